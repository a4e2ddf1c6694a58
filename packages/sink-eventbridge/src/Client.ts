/**
 * The one module that touches `@aws-sdk/client-eventbridge`: it sends one PutEvents
 * request and says, in our terms, what became of each entry or why the whole
 * request failed. The SDK makes one attempt only (the pipeline owns retries and
 * backoff), and a request that takes longer than the configured timeout fails.
 */
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { Config } from "./Config.ts"
import type { Entry } from "./Entries.ts"

/** What became of one entry of a request. */
export type EntryResult =
  | { readonly _tag: "Accepted"; readonly eventId: string }
  | { readonly _tag: "Failed"; readonly code: string; readonly message: string }

/**
 * Why a whole request failed:
 * - `Throttled`: AWS asked us to slow down; try again later.
 * - `Unavailable`: 5xx, a timeout or a network failure; try again later.
 * - `Unauthorized`: credentials missing or refused, no permission, no such bus; a person must act.
 * - `Invalid`: AWS refused the request itself (4xx); sending it again will not help.
 */
export class PutEventsError extends Data.TaggedError("PutEventsError")<{
  readonly kind: "Throttled" | "Unavailable" | "Unauthorized" | "Invalid"
  /** AWS's error code (`ThrottlingException`, ...) or the SDK's error name (`TimeoutError`, ...). */
  readonly code: string
  readonly status: number | undefined
  readonly detail: string
}> {
  override get message(): string {
    return `${this.code}${this.status === undefined ? "" : ` (HTTP ${this.status})`}: ${this.detail}`
  }
}

export interface Shape {
  /** Sends one PutEvents request (1..10 entries); one result per entry, in order. */
  readonly putEvents: (
    entries: ReadonlyArray<Entry>
  ) => Effect.Effect<ReadonlyArray<EntryResult>, PutEventsError>
  /** The region the client resolved (from the config or the standard chain). */
  readonly region: string
}

/** The EventBridge client as a service. */
export class Client extends Context.Service<Client, Shape>()(
  "@workos-relay/sink-eventbridge/Client"
) {}

/** The client settings of the sink config. */
export type Settings = Pick<Config, "region" | "endpoint" | "credentials" | "requestTimeout">

const throttlingCodes = new Set([
  "ThrottlingException",
  "Throttling",
  "ThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "SlowDown"
])

const unauthorizedCodes = new Set([
  "AccessDeniedException",
  "AccessDenied",
  "UnrecognizedClientException",
  "InvalidClientTokenId",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
  "IncompleteSignatureException",
  "IncompleteSignature",
  "MissingAuthenticationTokenException",
  "MissingAuthenticationToken",
  "ExpiredTokenException",
  "ExpiredToken",
  "AuthFailure",
  "NotAuthorized",
  "NotAuthorizedForSourceException",
  "CredentialsProviderError",
  "ResourceNotFoundException"
])

interface SdkError {
  readonly name?: unknown
  readonly message?: unknown
  readonly code?: unknown
  readonly $metadata?: { readonly httpStatusCode?: number }
}

/** Sorts an SDK failure into what the sink must do about it. */
export const classify = (error: unknown): PutEventsError => {
  const e = (typeof error === "object" && error !== null ? error : {}) as SdkError
  const code =
    typeof e.name === "string" && e.name !== "Error"
      ? e.name
      : typeof e.code === "string"
        ? e.code
        : "Error"
  const status = e.$metadata?.httpStatusCode
  const detail =
    typeof e.message === "string" && e.message !== ""
      ? // The HTTP handler's own prefix, "@smithy/node-http-handler - [ERROR] ", says nothing to a user.
        e.message.replace(/^@smithy\/[\w-]+ - \[\w+\] /, "")
      : String(error)
  const kind: PutEventsError["kind"] =
    throttlingCodes.has(code) || status === 429
      ? "Throttled"
      : unauthorizedCodes.has(code) || status === 401 || status === 403
        ? "Unauthorized"
        : status !== undefined && status >= 400 && status < 500
          ? "Invalid"
          : // 5xx, timeouts, refused or reset connections, answers we could not read.
            "Unavailable"
  return new PutEventsError({ kind, code, status, detail })
}

/** Makes the client; it is destroyed (its sockets closed) when the scope closes. */
export const make = (settings: Settings): Effect.Effect<Shape, PutEventsError, Scope.Scope> =>
  Effect.gen(function* () {
    const timeout = settings.requestTimeout
    const sdk = yield* Effect.acquireRelease(
      Effect.sync(
        () =>
          new EventBridgeClient({
            ...(settings.region === undefined ? {} : { region: settings.region }),
            ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
            ...(settings.credentials === undefined
              ? {}
              : {
                  credentials: {
                    accessKeyId: Redacted.value(settings.credentials.accessKeyId),
                    secretAccessKey: Redacted.value(settings.credentials.secretAccessKey),
                    ...(settings.credentials.sessionToken === undefined
                      ? {}
                      : { sessionToken: Redacted.value(settings.credentials.sessionToken) })
                  }
                }),
            // One attempt: the pipeline retries with its own backoff and knows which events to resend.
            maxAttempts: 1,
            requestHandler: {
              requestTimeout: timeout,
              connectionTimeout: Math.min(timeout, 5_000),
              throwOnRequestTimeout: true
            }
          })
      ),
      (client) => Effect.sync(() => client.destroy())
    )
    const region = yield* Effect.tryPromise({
      try: () => sdk.config.region(),
      catch: (error) => {
        const message = error instanceof Error ? error.message : String(error)
        // The SDK refuses a region that is set but malformed ("Region not accepted").
        return new PutEventsError({
          kind: "Unauthorized",
          code: "MissingRegion",
          status: undefined,
          detail: /not accepted/i.test(message)
            ? `the AWS region is not valid: ${message} (check region in the sink config, or AWS_REGION)`
            : `no AWS region: set region in the sink config or AWS_REGION (${message})`
        })
      }
    })

    const putEvents = (entries: ReadonlyArray<Entry>) =>
      Effect.tryPromise({
        try: (signal) =>
          sdk.send(new PutEventsCommand({ Entries: entries.map((entry) => ({ ...entry })) }), {
            abortSignal: signal
          }),
        catch: classify
      }).pipe(
        // The HTTP handler enforces the timeout; this also covers credential lookups and the rest.
        Effect.timeoutOrElse({
          duration: timeout + 1_000,
          orElse: () =>
            Effect.fail(
              new PutEventsError({
                kind: "Unavailable",
                code: "TimeoutError",
                status: undefined,
                detail: `PutEvents took longer than ${timeout} ms`
              })
            )
        }),
        Effect.map((output) =>
          entries.map((_, i): EntryResult => {
            const result = output.Entries?.[i]
            if (result?.EventId !== undefined && result.ErrorCode === undefined) {
              return { _tag: "Accepted", eventId: result.EventId }
            }
            return {
              _tag: "Failed",
              code: result?.ErrorCode ?? "MissingResult",
              message: result?.ErrorMessage ?? "EventBridge returned no result for this entry"
            }
          })
        )
      )

    return { putEvents, region }
  })

/** The client as a layer. */
export const layer = (settings: Settings): Layer.Layer<Client, PutEventsError> =>
  Layer.effect(Client, make(settings))
