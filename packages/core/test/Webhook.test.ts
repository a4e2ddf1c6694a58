import { createHmac } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { WorkOS as WorkOSNode } from "@workos-inc/node"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/testing/TestClock"
import { examples } from "../src/Examples.ts"
import { Webhook } from "../src/index.ts"

const secret = "whsec_test_0123456789abcdef"
const sdk = new WorkOSNode("sk_test_webhooks")
const now = Date.parse("2026-11-01T10:00:00.000Z")
// Formatted as WorkOS sends it: not the compact JSON.stringify, so a re-serialised body would differ.
const body = JSON.stringify(examples["dsync.user.created"], null, 2)

/** The header WorkOS sends, signed by WorkOS's own Node SDK. */
const signedByWorkOS = (payload: string, timestamp: number, key = secret) =>
  Effect.promise(() => sdk.webhooks.computeSignature(timestamp, payload, key)).pipe(
    Effect.map((hex) => `t=${timestamp}, v1=${hex}`)
  )

const verifyAt = (options: Webhook.VerifyOptions) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(now)
    return yield* Effect.flip(Webhook.verify(options))
  })

describe("Webhook.verify", () => {
  it.effect("accepts a delivery signed by WorkOS's SDK and decodes its event", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(now)
      const signature = yield* signedByWorkOS(body, now - 1000)
      const event = yield* Webhook.verify({ payload: body, signature, secret })
      expect(event).toEqual(examples["dsync.user.created"])
      // The raw bytes and a Redacted secret work the same.
      const fromBytes = yield* Webhook.verify({
        payload: new TextEncoder().encode(body),
        signature,
        secret: Redacted.make(secret)
      })
      expect(fromBytes.id).toBe(event.id)
    })
  )

  it.effect("accepts an HMAC-SHA256 of t, a dot and the body, made by hand, in any case", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(now)
      const hex = createHmac("sha256", secret).update(`${now}.${body}`).digest("hex")
      const event = yield* Webhook.verify({
        payload: body,
        signature: `t=${now},v1=${hex.toUpperCase()}`,
        secret
      })
      expect(event.event).toBe("dsync.user.created")
    })
  )

  it.effect("signs the way WorkOS does: its SDK accepts our signature", () =>
    Effect.gen(function* () {
      const timestamp = Date.now()
      const signature = yield* Webhook.sign({ payload: body, secret, timestamp })
      expect(signature).toBe(yield* signedByWorkOS(body, timestamp))
      const accepted = yield* Effect.promise(() =>
        sdk.webhooks.verifyHeader({ payload: body, sigHeader: signature, secret })
      )
      expect(accepted).toBe(true)
    })
  )

  it.effect("accepts any of several v1 signatures, as while a secret is rotated", () =>
    Effect.gen(function* () {
      const old = yield* signedByWorkOS(body, now, "whsec_old")
      const current = yield* signedByWorkOS(body, now)
      const signature = `${current}, v1=${old.split("v1=")[1]}`
      yield* TestClock.setTime(now)
      expect((yield* Webhook.verify({ payload: body, signature, secret })).event).toBe(
        "dsync.user.created"
      )
      const reversed = `${old}, v1=${current.split("v1=")[1]}`
      expect((yield* Webhook.verify({ payload: body, signature: reversed, secret })).event).toBe(
        "dsync.user.created"
      )
    })
  )

  it.effect("rejects a tampered body", () =>
    Effect.gen(function* () {
      const signature = yield* signedByWorkOS(body, now)
      for (const payload of [
        body.replace('"role": {\n      "slug": "admin"', '"role": {\n      "slug": "owner"'),
        JSON.stringify(JSON.parse(body)), // the same event re-serialised
        `${body} `
      ]) {
        expect(payload).not.toBe(body)
        const error = yield* verifyAt({ payload, signature, secret })
        expect(error._tag).toBe("WebhookSignatureError")
        expect(error.message).toContain("raw body")
      }
    })
  )

  it.effect("rejects a wrong secret", () =>
    Effect.gen(function* () {
      const signature = yield* signedByWorkOS(body, now)
      const error = yield* verifyAt({ payload: body, signature, secret: "whsec_wrong" })
      expect(error).toMatchObject({ _tag: "WebhookSignatureError", signatures: 1 })
    })
  )

  it.effect("rejects stale and far-future timestamps, by the tolerance", () =>
    Effect.gen(function* () {
      const at = (offset: number) => signedByWorkOS(body, now + offset)
      const stale = yield* verifyAt({ payload: body, signature: yield* at(-180_001), secret })
      expect(stale).toMatchObject({ _tag: "WebhookTimestampError", timestamp: now - 180_001, now })
      expect(stale.message).toContain("180001 ms old")
      const future = yield* verifyAt({ payload: body, signature: yield* at(180_001), secret })
      expect(future).toMatchObject({ _tag: "WebhookTimestampError" })
      expect(future.message).toContain("in the future")
      // Within the default tolerance of 3 minutes, and beyond a tighter one.
      yield* TestClock.setTime(now)
      yield* Webhook.verify({ payload: body, signature: yield* at(-179_000), secret })
      const tight = yield* verifyAt({
        payload: body,
        signature: yield* at(-31_000),
        secret,
        tolerance: "30 seconds"
      })
      expect(tight._tag).toBe("WebhookTimestampError")
      // A timestamp in seconds, not milliseconds, is decades old.
      const seconds = yield* verifyAt({
        payload: body,
        signature: yield* signedByWorkOS(body, Math.floor(now / 1000)),
        secret
      })
      expect(seconds._tag).toBe("WebhookTimestampError")
    })
  )

  it.effect("rejects malformed headers, saying what is wrong", () =>
    Effect.gen(function* () {
      const good = yield* signedByWorkOS(body, now)
      const hex = good.split("v1=")[1]!
      for (const [signature, reason] of [
        [undefined, "missing"],
        ["", "missing"],
        [`v1=${hex}`, "t= is missing"],
        [`t=${now}`, "no v1"],
        [`t=${now}, v2=${hex}`, "no v1"],
        [`t=soon, v1=${hex}`, "not unix milliseconds"],
        [`t=${now}, v1=${hex.slice(2)}`, "64 hex digits"],
        [`t=${now}, v1=${"z".repeat(64)}`, "64 hex digits"],
        [`t=${now} v1=${hex}`, "not unix milliseconds"],
        [`${now}.${hex}`, "not key=value"]
      ] as const) {
        const error = yield* verifyAt({ payload: body, signature, secret })
        expect(error._tag, String(signature)).toBe("WebhookHeaderError")
        expect(error.message, String(signature)).toContain(reason)
      }
    })
  )

  it.effect("a verified body that is not a valid event is a decode error, naming the path", () =>
    Effect.gen(function* () {
      const broken = JSON.stringify({ ...examples["dsync.user.created"], data: { id: 1 } })
      const error = yield* verifyAt({
        payload: broken,
        signature: yield* signedByWorkOS(broken, now),
        secret
      })
      expect(error._tag).toBe("EventDecodeError")
      expect(error.message).toContain("dsync.user.created")
      const notJson = "<html>"
      const notJsonError = yield* verifyAt({
        payload: notJson,
        signature: yield* signedByWorkOS(notJson, now),
        secret
      })
      expect(notJsonError._tag).toBe("EventDecodeError")
    })
  )
})
