/**
 * Creates or updates the WorkOS webhook endpoint for the relay's doorbell through
 * WorkOS's `/webhook_endpoints` API: one endpoint per URL, subscribed to the event
 * types the relay reads that WorkOS sends by webhook (18 types, `vault.*`,
 * `dsync.token.*`, `action.*` and two authentication failures, are only in the
 * Events API: the relay reads them by polling).
 */
import { Event } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import * as Redacted from "effect/Redacted"

/** Event types WorkOS does not send by webhook (`/webhook_endpoints` refuses them). */
export const apiOnlyTypes: ReadonlySet<string> = new Set([
  "action.authentication.denied",
  "action.user_registration.denied",
  "authentication.email_verification_failed",
  "authentication.mfa_failed",
  "dsync.token.created",
  "dsync.token.revoked",
  "vault.byok_key.deleted",
  "vault.byok_key.verification_completed",
  "vault.data.created",
  "vault.data.deleted",
  "vault.data.read",
  "vault.data.updated",
  "vault.dek.decrypted",
  "vault.dek.read",
  "vault.kek.created",
  "vault.kek.deleted",
  "vault.metadata.read",
  "vault.names.listed"
])

/** The types to subscribe an endpoint to: those read (undefined: every known type) that WorkOS sends by webhook. */
export const webhookTypes = (read: ReadonlyArray<string> | undefined): Array<string> =>
  (read ?? Event.eventTypes).filter((type) => !apiOnlyTypes.has(type))

export interface Registered {
  readonly action: "created" | "updated"
  readonly id: string
  readonly events: ReadonlyArray<string>
  /** The endpoint's secret, as WorkOS returned it (given on creation). */
  readonly secret: string | undefined
}

export class RegisterError extends Error {}

/** Creates the endpoint for `url`, or updates the one WorkOS has for it (events, enabled). */
export const register = (options: {
  readonly baseUrl: string
  readonly apiKey: Redacted.Redacted<string>
  readonly url: string
  readonly events: ReadonlyArray<string>
}): Effect.Effect<Registered, RegisterError> =>
  Effect.gen(function* () {
    const client = (yield* HttpClient.HttpClient).pipe(
      HttpClient.mapRequest(HttpClientRequest.bearerToken(Redacted.value(options.apiKey))),
      HttpClient.mapRequest(HttpClientRequest.prependUrl(options.baseUrl))
    )
    const call = (request: HttpClientRequest.HttpClientRequest, what: string) =>
      client.execute(request).pipe(
        Effect.flatMap((response) =>
          response.json.pipe(
            Effect.flatMap((body: any) =>
              response.status >= 200 && response.status < 300
                ? Effect.succeed(body)
                : Effect.fail(
                    new RegisterError(
                      `${what}: WorkOS answered ${response.status}: ${body?.message ?? ""}${body?.code === undefined ? "" : ` (${body.code})`}${Array.isArray(body?.errors) ? `: ${body.errors.map((e: any) => e.message).join("; ")}` : ""}`
                    )
                  )
            )
          )
        ),
        Effect.mapError((e) =>
          e instanceof RegisterError ? e : new RegisterError(`${what}: ${e.message}`)
        )
      )
    // The list is short (a few endpoints per environment): pages of 100.
    const existing: Array<any> = []
    let after: string | null = null
    do {
      const page: any = yield* call(
        HttpClientRequest.get("/webhook_endpoints", {
          urlParams: { limit: "100", ...(after === null ? {} : { after }) }
        }),
        "listing the webhook endpoints"
      )
      existing.push(...(page.data ?? []))
      after = page.list_metadata?.after ?? null
    } while (after !== null)
    const current = existing.find((e) => e.endpoint_url === options.url)
    if (current === undefined) {
      const created: any = yield* call(
        HttpClientRequest.post("/webhook_endpoints").pipe(
          HttpClientRequest.bodyJsonUnsafe({ endpoint_url: options.url, events: options.events })
        ),
        "creating the webhook endpoint"
      )
      return {
        action: "created" as const,
        id: created.id,
        events: created.events,
        secret: created.secret
      }
    }
    const updated: any = yield* call(
      HttpClientRequest.patch(`/webhook_endpoints/${current.id}`).pipe(
        HttpClientRequest.bodyJsonUnsafe({ events: options.events, status: "enabled" })
      ),
      "updating the webhook endpoint"
    )
    return { action: "updated" as const, id: updated.id, events: updated.events, secret: undefined }
  }).pipe(Effect.provide(FetchHttpClient.layer))
