/**
 * A custom sink for workos-relay: POSTs each event, as WorkOS sent it, to an
 * endpoint of yours, signed the way WorkOS signs its own webhooks, so a receiver can
 * reuse the same verification code:
 *
 *   X-Relay-Signature: t=<unix ms>, v1=<hex HMAC-SHA256 of `${t}.${body}` with the secret>
 *
 * 2xx: delivered. 408, 429, 5xx, timeouts and network errors: retried by the pipeline
 * (honouring Retry-After). 401/403: the sink stops (a wrong secret or URL needs a
 * person). Any other 4xx: the event is dead-lettered with the endpoint's answer.
 *
 * The sink is raw (`raw: true`): an event whose payload breaks the spec is POSTed too,
 * its body exactly what WorkOS sent, with where it breaks the spec in a header of its
 * own (not covered by the signature, which covers the body as always):
 *
 *   X-Relay-Schema-Mismatch: {"path":"data.resource_type_slug","reason":"required field is missing"}
 */
import { createHmac } from "node:crypto"
import { type Event, Sink } from "@workos-relay/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

export const Config = Schema.Struct({
  /** Where to POST each event. */
  url: Schema.String.check(Schema.isPattern(/^https?:\/\/\S+$/, { expected: "an http(s) URL" })),
  /** The HMAC-SHA256 key for the signature header. */
  secret: Schema.RedactedFromValue(Schema.String),
  /** Milliseconds to wait for the endpoint's answer. */
  timeoutMs: Schema.optionalKey(
    Schema.Int.check(Schema.isBetween({ minimum: 100, maximum: 60_000 }))
  )
})

export const sign = (secret: string, body: string, timestamp: number): string =>
  `t=${timestamp}, v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`

/**
 * The mismatch header's value: JSON with every character past ASCII escaped
 * (`\u2026`), as a header value must be bytes a receiver reads alike.
 */
export const mismatchHeader = (mismatch: Sink.Mismatch): string =>
  JSON.stringify({ path: mismatch.path, reason: mismatch.reason }).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
  )

export const definition = Sink.define({
  type: "webhook",
  // It forwards events as WorkOS sent them: one that breaks the spec goes too, marked.
  raw: true,
  config: Config,
  make: (config) =>
    Effect.gen(function* () {
      const client = yield* HttpClient.HttpClient
      const timeout = Duration.millis(config.timeoutMs ?? 10_000)

      const post = (event: Event.Any) => {
        const body = JSON.stringify(event)
        const mismatch = Sink.mismatchOf(event)
        const request = HttpClientRequest.post(config.url).pipe(
          HttpClientRequest.bodyText(body, "application/json"),
          HttpClientRequest.setHeader(
            "x-relay-signature",
            sign(Redacted.value(config.secret), body, Date.now())
          ),
          mismatch === undefined
            ? (r) => r
            : HttpClientRequest.setHeader("x-relay-schema-mismatch", mismatchHeader(mismatch))
        )
        return client.execute(request).pipe(
          Effect.flatMap((response) =>
            response.text.pipe(
              Effect.orElseSucceed(() => ""),
              Effect.map((text) =>
                outcomeOf(response.status, response.headers["retry-after"], text)
              )
            )
          ),
          Effect.timeout(timeout),
          Effect.catch((error) => Effect.succeed(Sink.retry(`request failed: ${error.message}`)))
        )
      }

      // `satisfies` types `batch` and `deliver` inside Effect.gen, where nothing else can.
      return {
        batch: { maxEvents: 20, maxWait: "500 millis" },
        // One request at a time keeps the endpoint's view in event order.
        deliver: (batch) =>
          Effect.gen(function* () {
            const outcomes: Array<Sink.Outcome> = []
            for (const [i, event] of batch.entries()) {
              const outcome = yield* post(event)
              if (outcome === "fatal") {
                return yield* new Sink.SinkFatal({
                  reason: `${config.url} refused our signature (401/403): check the secret`
                })
              }
              outcomes.push(outcome)
              // After a retry, later events wait too, so the endpoint never sees them out of order.
              if (outcome._tag === "Retry") {
                for (const _ of batch.slice(i + 1))
                  outcomes.push(Sink.retry("an earlier event is being retried"))
                break
              }
            }
            return outcomes
          })
      } satisfies Sink.Sink
    }).pipe(Effect.provide(FetchHttpClient.layer))
})

const outcomeOf = (
  status: number,
  retryAfter: string | undefined,
  text: string
): Sink.Outcome | "fatal" => {
  if (status >= 200 && status < 300) return Sink.delivered
  if (status === 401 || status === 403) return "fatal"
  const answer = text === "" ? "" : `: ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`
  if (status === 408 || status === 429 || status >= 500) {
    const seconds = Number(retryAfter)
    return Sink.retry(
      `HTTP ${status}${answer}`,
      Number.isFinite(seconds) ? Duration.seconds(seconds) : undefined
    )
  }
  return Sink.rejected(`HTTP ${status}${answer}`)
}
