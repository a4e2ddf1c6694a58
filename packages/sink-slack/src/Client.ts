/**
 * The one module that touches `@slack/web-api`.
 *
 * The client's own retries are off (`retries: 0`) and rate-limited calls are
 * rejected rather than waited out (`rejectRateLimitedCalls`), so every 429, 5xx
 * and timeout comes back to us at once, typed: the pipeline owns retries, and
 * the default client would otherwise retry one message for about 30 minutes.
 */
import { type Logger, LogLevel, WebClient } from "@slack/web-api"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type { Message } from "./Blocks.ts"

/** Slack answered `ok: false` with this error code (`channel_not_found`, `invalid_auth`, ...). */
export class SlackApiError extends Data.TaggedError("SlackApiError")<{
  readonly error: string
  /** Extra detail Slack gave, e.g. which block is invalid. */
  readonly detail?: string
}> {
  override get message(): string {
    return this.detail === undefined
      ? `Slack error ${this.error}`
      : `Slack error ${this.error}: ${this.detail}`
  }
}

/** Slack answered 429: wait `retryAfter` before calling again. */
export class SlackRateLimited extends Data.TaggedError("SlackRateLimited")<{
  readonly retryAfter: Duration.Duration
}> {
  override get message(): string {
    return `Slack rate limited the call; retry after ${Duration.format(this.retryAfter)}`
  }
}

/** Slack could not be reached or answered with an HTTP error (5xx, a proxy's 4xx) or timed out. */
export class SlackUnavailable extends Data.TaggedError("SlackUnavailable")<{
  readonly reason: string
  readonly status?: number
}> {
  override get message(): string {
    return this.reason
  }
}

export type SlackError = SlackApiError | SlackRateLimited | SlackUnavailable

export interface Options {
  readonly token: Redacted.Redacted<string>
  /** Slack's Web API base URL; a stand-in's in tests. */
  readonly slackApiUrl?: string
  /** How long one call may take. */
  readonly timeout: Duration.Input
}

export interface Posted {
  readonly channel: string
  readonly ts: string
}

export interface Identity {
  readonly team: string
  readonly user: string
  readonly botId?: string
}

export interface Shape {
  /** `chat.postMessage`: one message to one channel. */
  readonly postMessage: (channel: string, message: Message) => Effect.Effect<Posted, SlackError>
  /** `auth.test`: who the token is. */
  readonly authTest: Effect.Effect<Identity, SlackError>
}

/** The Slack Web API, as this sink uses it. */
export class Client extends Context.Service<Client, Shape>()("@workos-relay/sink-slack/Client") {}

// The client logs rate limits and failed requests at warn/info; we report them ourselves.
const quiet: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  setLevel: () => {},
  getLevel: () => LogLevel.ERROR,
  setName: () => {}
}

/**
 * Why a request could not be sent. `fetch` says only "fetch failed"; the system's
 * message beneath names the host (`getaddrinfo ENOTFOUND slack.com`, `connect
 * ECONNREFUSED 10.0.0.1:443`).
 */
const reachFailure = (original: any): string | undefined => {
  const system = original?.cause?.message
  return typeof system === "string" && system !== "" ? system : original?.message
}

const toError = (error: unknown): SlackError => {
  const e = error as {
    code?: string
    data?: { error?: string; response_metadata?: { messages?: ReadonlyArray<string> } }
    retryAfter?: number
    statusCode?: number
    statusMessage?: string
    original?: Error
    message?: string
  }
  switch (e?.code) {
    case "slack_webapi_platform_error": {
      const messages = e.data?.response_metadata?.messages
      return new SlackApiError({
        error: e.data?.error ?? "unknown_error",
        ...(messages !== undefined && messages.length > 0 ? { detail: messages.join("; ") } : {})
      })
    }
    case "slack_webapi_rate_limited_error":
      return new SlackRateLimited({ retryAfter: Duration.seconds(e.retryAfter ?? 1) })
    case "slack_webapi_http_error":
      return new SlackUnavailable({
        reason: `Slack answered HTTP ${e.statusCode} ${e.statusMessage ?? ""}`.trim(),
        ...(e.statusCode !== undefined ? { status: e.statusCode } : {})
      })
    case "slack_webapi_request_error": {
      const original = e.original
      const timedOut = original?.name === "TimeoutError" || original?.name === "AbortError"
      return new SlackUnavailable({
        reason: timedOut
          ? "Slack did not answer in time"
          : `could not reach Slack: ${reachFailure(original) ?? e.message}`
      })
    }
    default:
      return new SlackUnavailable({ reason: `Slack call failed: ${e?.message ?? String(error)}` })
  }
}

/** A client for one token. */
export const make = (options: Options): Shape => {
  const client = new WebClient(Redacted.value(options.token), {
    ...(options.slackApiUrl !== undefined ? { slackApiUrl: options.slackApiUrl } : {}),
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: Duration.toMillis(Duration.fromInputUnsafe(options.timeout)),
    logger: quiet
  })
  return {
    postMessage: (channel, message) =>
      Effect.tryPromise({
        try: () =>
          client.chat.postMessage({
            channel,
            text: message.text,
            blocks: message.blocks as any,
            // Payload text is escaped already; no auto-linking of names, no previews.
            parse: "none",
            link_names: false,
            unfurl_links: false,
            unfurl_media: false
          }),
        catch: toError
      }).pipe(
        Effect.map((result) => ({ channel: result.channel ?? channel, ts: result.ts ?? "" }))
      ),
    authTest: Effect.tryPromise({ try: () => client.auth.test(), catch: toError }).pipe(
      Effect.map((result) => ({
        team: result.team ?? "",
        user: result.user ?? "",
        ...(result.bot_id !== undefined ? { botId: result.bot_id } : {})
      }))
    )
  }
}

export const layer = (options: Options): Layer.Layer<Client> => Layer.succeed(Client, make(options))
