/**
 * The Slack sink: routes each event to a channel, renders it (`Blocks`), paces
 * each channel, posts it (`Client`) and says per event what became of it.
 *
 * Order per channel holds: after a retry outcome for a channel, nothing more
 * is sent there in this batch, and its later events are retried too. Channels
 * are independent: one throttled channel does not hold back the others.
 */

import type { Event } from "@workos-relay/core"
import { Sink } from "@workos-relay/core"
import * as Clock from "effect/Clock"
import * as EffectConfig from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import * as Blocks from "./Blocks.ts"
import * as Client from "./Client.ts"
import { Config, defaultPacing, defaultTimeoutSeconds } from "./Config.ts"
import * as TokenBucket from "./internal/TokenBucket.ts"
import * as Routing from "./Routing.ts"

/** The token cannot work until a person acts: the sink stops. */
const FATAL: Record<string, string> = {
  invalid_auth: "the token is not valid; check `token` or SLACK_BOT_TOKEN",
  not_authed: "no token was sent; set `token` or SLACK_BOT_TOKEN",
  token_revoked: "the token was revoked; reinstall the Slack app and update the token",
  token_expired: "the token expired; refresh it and update the config",
  account_inactive: "the token's user or bot was deactivated",
  missing_scope: "the Slack app lacks a scope it needs (chat:write); add it and reinstall the app",
  team_access_not_granted: "the token has no access to this workspace"
}

/** The message or channel is refused for good: dead-letter the event with Slack's error. */
const REJECTED = new Set([
  "channel_not_found",
  "not_in_channel",
  "is_archived",
  "msg_too_long",
  "invalid_blocks",
  "restricted_action",
  "no_text",
  "too_many_attachments",
  "invalid_arguments"
])

/** What to do about a refusal a person can fix; then `workos-relay dead-letters retry`. */
const HINTS: Record<string, string> = {
  channel_not_found:
    "no such channel, or a private one the app is not in: check the name or ID, or /invite the app",
  not_in_channel:
    "the app is not in the channel: /invite it there, or give the app the chat:write.public scope (public channels)",
  is_archived: "the channel is archived: unarchive it, or route these events to another channel"
}

/** Errors about the channel itself: every later event for it would fail the same way. */
const CHANNEL_LEVEL = new Set([
  "channel_not_found",
  "not_in_channel",
  "is_archived",
  "restricted_action"
])

/** Slack's own trouble, said with HTTP 200: try again later. */
const TRANSIENT = new Set([
  "internal_error",
  "fatal_error",
  "service_unavailable",
  "request_timeout",
  "ratelimited",
  "rate_limited"
])

export interface Options {
  /** A typed override of header and summary, per event, for library users. */
  readonly format?: Routing.Format
}

interface Sent {
  readonly outcome: Sink.Outcome
  /** Whether later messages to this channel must wait for a later batch (a retry) or are pointless (channel-level rejection). */
  readonly stopChannel: boolean
}

const outcomeOf = (
  channel: string,
  error: Client.SlackError
): Effect.Effect<Sent, Sink.SinkFatal> => {
  switch (error._tag) {
    case "SlackRateLimited":
      return Effect.succeed({
        outcome: Sink.retry(`Slack rate limited ${channel}`, error.retryAfter),
        stopChannel: true
      })
    case "SlackUnavailable":
      return Effect.succeed({ outcome: Sink.retry(error.reason), stopChannel: true })
    case "SlackApiError": {
      const fatal = FATAL[error.error]
      if (fatal !== undefined) {
        return Effect.fail(
          new Sink.SinkFatal({ reason: `Slack refused the token (${error.error}): ${fatal}` })
        )
      }
      if (TRANSIENT.has(error.error)) {
        return Effect.succeed({
          outcome: Sink.retry(`Slack error ${error.error}`),
          stopChannel: true
        })
      }
      const hint = HINTS[error.error]
      const detail =
        (error.detail === undefined ? "" : ` (${error.detail})`) +
        (hint === undefined ? "" : `: ${hint}`)
      const reason = REJECTED.has(error.error)
        ? `Slack refused the message for ${channel}: ${error.error}${detail}`
        : `Slack refused the message for ${channel} with an unexpected error: ${error.error}${detail}`
      return Effect.succeed({
        outcome: Sink.rejected(reason),
        stopChannel: CHANNEL_LEVEL.has(error.error)
      })
    }
  }
}

const resolveToken = (config: Config): Effect.Effect<Redacted.Redacted<string>, Sink.SinkFatal> =>
  config.token !== undefined
    ? Effect.succeed(config.token)
    : Effect.gen(function* () {
        return yield* EffectConfig.Redacted("SLACK_BOT_TOKEN")
      }).pipe(
        Effect.mapError(
          () =>
            new Sink.SinkFatal({
              reason: "no Slack token: set `token` in the sink's config or SLACK_BOT_TOKEN"
            })
        )
      )

/** Makes a Slack sink from a decoded config. */
export const make = (
  config: Config,
  context: Sink.Context,
  options: Options = {}
): Effect.Effect<Sink.Sink, Sink.SinkFatal> =>
  Effect.gen(function* () {
    const token = yield* resolveToken(config)
    const client = Client.make({
      token,
      ...(config.slackApiUrl !== undefined ? { slackApiUrl: config.slackApiUrl } : {}),
      timeout: Duration.seconds(config.timeoutSeconds ?? defaultTimeoutSeconds)
    })
    // Slack's answer to auth.test: a token it refuses stops the sink; anything else
    // (Slack unreachable, say) is a failure to check it.
    const check = client.authTest.pipe(
      Effect.asVoid,
      Effect.mapError((error) =>
        error._tag === "SlackApiError" && FATAL[error.error] !== undefined
          ? new Sink.SinkFatal({
              reason: `Slack refused the token (${error.error}): ${FATAL[error.error]}`
            })
          : new Sink.SinkUnavailable({
              reason: `could not check the Slack token: ${error.message}`
            })
      )
    )
    // A bad token should stop the sink at start, not at the first event. Slack
    // being unreachable now is no reason not to start: deliveries will retry.
    yield* check.pipe(
      Effect.catchTag("SinkUnavailable", (e) =>
        Effect.logWarning(`sink ${context.name}: ${e.reason}`)
      )
    )
    const route = Routing.make(config, options.format)
    const pacing = config.pacing === "off" ? undefined : { ...defaultPacing, ...config.pacing }
    const buckets = new Map<string, TokenBucket.TokenBucket>()

    const pace = (channel: string): Effect.Effect<void> => {
      if (pacing === undefined) return Effect.void
      let bucket = buckets.get(channel)
      if (bucket === undefined) {
        bucket = TokenBucket.make(pacing.perSecond, pacing.burst)
        buckets.set(channel, bucket)
      }
      const take = bucket.take
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const wait = take(now)
        return wait > 0 ? Effect.sleep(Duration.millis(wait)) : Effect.void
      })
    }

    const send = (channel: string, message: Blocks.Message): Effect.Effect<Sent, Sink.SinkFatal> =>
      pace(channel).pipe(
        Effect.andThen(client.postMessage(channel, message)),
        Effect.as<Sent>({ outcome: Sink.delivered, stopChannel: false }),
        Effect.catch((error) => outcomeOf(channel, error))
      )

    const deliver = (batch: ReadonlyArray<Event.Any>) =>
      Effect.gen(function* () {
        const outcomes: Array<Sink.Outcome> = new Array(batch.length)
        const routed = batch.map(route)
        const byChannel = new Map<string, Array<number>>()
        routed.forEach((r, i) => {
          const indexes = byChannel.get(r.channel)
          if (indexes === undefined) byChannel.set(r.channel, [i])
          else indexes.push(i)
        })

        const deliverChannel = (channel: string, indexes: ReadonlyArray<number>) =>
          Effect.gen(function* () {
            if (config.digest !== undefined && indexes.length > config.digest.threshold) {
              const mentions = [
                ...new Set(indexes.flatMap((i) => routed[i]!.options.mentions ?? []))
              ]
              const message = Blocks.digest(
                indexes.map((i) => batch[i]!),
                mentions.length > 0 ? { mentions } : {}
              )
              const sent = yield* send(channel, message)
              // Slack refusing the digest itself is no reason to dead-letter every event
              // in it: they go one by one instead (a refused channel refuses them all).
              if (sent.outcome._tag !== "Rejected" || sent.stopChannel) {
                for (const i of indexes) outcomes[i] = sent.outcome
                return
              }
            }
            for (let k = 0; k < indexes.length; k++) {
              const i = indexes[k]!
              const sent = yield* send(channel, Blocks.render(batch[i]!, routed[i]!.options))
              outcomes[i] = sent.outcome
              if (!sent.stopChannel) continue
              // Keep the channel's order: its later events wait (or fail) with this one.
              const rest =
                sent.outcome._tag === "Retry"
                  ? Sink.retry(
                      `an earlier event for ${channel} is waiting: ${sent.outcome.reason}`,
                      ...(sent.outcome.after !== undefined ? [sent.outcome.after] : [])
                    )
                  : sent.outcome
              for (const j of indexes.slice(k + 1)) outcomes[j] = rest
              return
            }
          })

        yield* Effect.forEach(byChannel, ([channel, indexes]) => deliverChannel(channel, indexes), {
          concurrency: 8,
          discard: true
        })
        return outcomes as ReadonlyArray<Sink.Outcome>
      }).pipe(Effect.annotateLogs({ sink: context.name }))

    return {
      // Pacing spaces messages about a second apart per channel: small batches keep each delivery short.
      batch: { maxEvents: 20, maxWait: "1 second" },
      deliver,
      check
    } satisfies Sink.Sink
  })

/**
 * A Slack sink definition, with a typed message override for library users. It is
 * raw: an event whose payload breaks the spec is posted too, as the generic message
 * (the one an event of a type the spec does not know gets), saying where; `format`
 * is not asked about it.
 */
export const define = (options: Options = {}) =>
  Sink.define({
    type: "slack",
    raw: true,
    config: Config,
    make: (config, context) => make(config, context, options)
  })

/** The `type: slack` sink definition the runner registers. */
export const definition = define()
