/**
 * WorkOS webhooks: checks that a request came from WorkOS, then decodes its event.
 *
 * WorkOS signs each delivery with the endpoint's secret and sends
 * `WorkOS-Signature: t=<unix ms>, v1=<hex>`, where v1 is HMAC-SHA256 over
 * `` `${t}.${rawBody}` ``. Verify the body exactly as received: a re-serialised
 * one differs by a space and no longer matches. Uses Web Crypto, so it runs
 * wherever `effect` does; the comparison is Web Crypto's own (constant time).
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Event from "./Event.ts"

/** The header WorkOS puts the signature in. */
export const header = "WorkOS-Signature"

/** How far a signature's time may be from now, either way, by default: 3 minutes, as WorkOS's SDK. */
export const defaultTolerance: Duration.Duration = Duration.minutes(3)

/** The `WorkOS-Signature` header is missing or not `t=<unix ms>, v1=<hex>`. */
export class WebhookHeaderError extends Data.TaggedError("WebhookHeaderError")<{
  readonly reason: string
}> {
  override get message(): string {
    return `the ${header} header is malformed: ${this.reason}`
  }
}

/** The signature's time is too far from now: a replay of an old delivery, or a clock far off. */
export class WebhookTimestampError extends Data.TaggedError("WebhookTimestampError")<{
  /** The signature's time, in unix milliseconds. */
  readonly timestamp: number
  /** Now, in unix milliseconds. */
  readonly now: number
  readonly tolerance: Duration.Duration
}> {
  override get message(): string {
    const skew = this.now - this.timestamp
    const how = skew > 0 ? `${skew} ms old` : `${-skew} ms in the future`
    return `the webhook signature is ${how}, beyond the tolerance of ${Duration.format(this.tolerance)}`
  }
}

/** No signature in the header matches the body: a wrong secret, or a body changed on the way. */
export class WebhookSignatureError extends Data.TaggedError("WebhookSignatureError")<{
  /** How many `v1` signatures the header carried (more than one while a secret is rotated). */
  readonly signatures: number
}> {
  override get message(): string {
    return "the webhook signature does not match the body: check the secret, and verify the raw body as received"
  }
}

export type WebhookError =
  | WebhookHeaderError
  | WebhookTimestampError
  | WebhookSignatureError
  | Event.EventDecodeError

export interface VerifyOptions {
  /** The request body exactly as received. */
  readonly payload: string | Uint8Array
  /** The value of the `WorkOS-Signature` header. */
  readonly signature: string | null | undefined
  /** The endpoint's secret, from the WorkOS dashboard. */
  readonly secret: Redacted.Redacted<string> | string
  /** How far the signature's time may be from now (default 3 minutes). */
  readonly tolerance?: Duration.Input | undefined
}

const encoder = new TextEncoder()

const hmacKey = (secret: Redacted.Redacted<string> | string, usage: "sign" | "verify") =>
  Effect.promise(() =>
    crypto.subtle.importKey(
      "raw",
      encoder.encode(Redacted.isRedacted(secret) ? Redacted.value(secret) : secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      [usage]
    )
  )

/** The bytes WorkOS signs: `${t}.` then the raw body. */
const signedBytes = (timestamp: number, payload: string | Uint8Array): Uint8Array<ArrayBuffer> => {
  const prefix = encoder.encode(`${timestamp}.`)
  const body = typeof payload === "string" ? encoder.encode(payload) : payload
  const bytes = new Uint8Array(prefix.length + body.length)
  bytes.set(prefix)
  bytes.set(body, prefix.length)
  return bytes
}

/** Parses `t=<unix ms>, v1=<hex>[, v1=<hex>...]`. */
export const parseHeader = (
  value: string | null | undefined
): Result.Result<{ timestamp: number; signatures: ReadonlyArray<string> }, WebhookHeaderError> => {
  if (value === undefined || value === null || value.trim() === "")
    return Result.fail(new WebhookHeaderError({ reason: "it is missing" }))
  let timestamp: number | undefined
  const signatures: Array<string> = []
  for (const part of value.split(",")) {
    const eq = part.indexOf("=")
    if (eq < 0)
      return Result.fail(new WebhookHeaderError({ reason: `"${part.trim()}" is not key=value` }))
    const key = part.slice(0, eq).trim()
    const field = part.slice(eq + 1).trim()
    if (key === "t") {
      if (!/^\d{1,16}$/.test(field))
        return Result.fail(
          new WebhookHeaderError({ reason: `t=${field} is not unix milliseconds` })
        )
      timestamp = Number(field)
    } else if (key === "v1") {
      if (!/^[0-9a-fA-F]{64}$/.test(field))
        return Result.fail(
          new WebhookHeaderError({ reason: "v1 is not a hex HMAC-SHA256 (64 hex digits)" })
        )
      signatures.push(field.toLowerCase())
    }
    // Other schemes are skipped, so a future v2 alongside v1 does not break verification.
  }
  if (timestamp === undefined)
    return Result.fail(new WebhookHeaderError({ reason: "t= is missing" }))
  if (signatures.length === 0)
    return Result.fail(new WebhookHeaderError({ reason: "no v1= signature" }))
  return Result.succeed({ timestamp, signatures })
}

const fromHex = (hex: string): Uint8Array<ArrayBuffer> => {
  const bytes = new Uint8Array(hex.length / 2)
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  return bytes
}

const toHex = (bytes: ArrayBuffer): string =>
  Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("")

/**
 * Checks that a delivery came from WorkOS, without decoding its body: the header,
 * the time within the tolerance, and a signature made with one of `secrets` (several
 * while a secret is rotated). Fails with the same errors as `verify`, less decoding.
 */
export const verifySignature = (options: {
  readonly payload: string | Uint8Array
  readonly signature: string | null | undefined
  readonly secrets: ReadonlyArray<Redacted.Redacted<string> | string>
  readonly tolerance?: Duration.Input | undefined
}): Effect.Effect<void, WebhookHeaderError | WebhookTimestampError | WebhookSignatureError> =>
  Effect.gen(function* () {
    const parsed = parseHeader(options.signature)
    if (Result.isFailure(parsed)) return yield* Effect.fail(parsed.failure)
    const { timestamp, signatures } = parsed.success
    const tolerance = Duration.fromInputUnsafe(options.tolerance ?? defaultTolerance)
    const now = yield* Clock.currentTimeMillis
    if (Math.abs(now - timestamp) > Duration.toMillis(tolerance))
      return yield* Effect.fail(new WebhookTimestampError({ timestamp, now, tolerance }))
    const data = signedBytes(timestamp, options.payload)
    for (const secret of options.secrets) {
      const key = yield* hmacKey(secret, "verify")
      for (const signature of signatures) {
        // crypto.subtle.verify compares in constant time.
        if (
          yield* Effect.promise(() => crypto.subtle.verify("HMAC", key, fromHex(signature), data))
        )
          return
      }
    }
    return yield* Effect.fail(new WebhookSignatureError({ signatures: signatures.length }))
  })

/**
 * Checks a delivery and decodes its event. Fails with a distinct error for a
 * malformed header, a time outside the tolerance, a signature that does not
 * match (wrong secret or changed body), and a verified body that is not an event.
 */
export const verify = (options: VerifyOptions): Effect.Effect<Event.Any, WebhookError> =>
  Effect.gen(function* () {
    yield* verifySignature({ ...options, secrets: [options.secret] })
    const text =
      typeof options.payload === "string"
        ? options.payload
        : new TextDecoder().decode(options.payload)
    const event = Event.decodeJson(text)
    return Result.isSuccess(event) ? event.success : yield* Effect.fail(event.failure)
  })

/**
 * The `WorkOS-Signature` value WorkOS would send for a body: for tests, and for
 * stand-ins that deliver webhooks. `timestamp` defaults to now.
 */
export const sign = (options: {
  readonly payload: string | Uint8Array
  readonly secret: Redacted.Redacted<string> | string
  readonly timestamp?: number | undefined
}): Effect.Effect<string> =>
  Effect.gen(function* () {
    const timestamp = options.timestamp ?? (yield* Clock.currentTimeMillis)
    const key = yield* hmacKey(options.secret, "sign")
    const mac = yield* Effect.promise(() =>
      crypto.subtle.sign("HMAC", key, signedBytes(timestamp, options.payload))
    )
    return `t=${timestamp}, v1=${toHex(mac)}`
  })
