import { createHmac, timingSafeEqual } from "node:crypto"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Event, Sink } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { definition, mismatchHeader } from "../src/index.ts"

const secret = "whsec_test"

/** A receiver on 127.0.0.1 that answers with the next scripted status (200 when none is left). */
const receiver = Effect.acquireRelease(
  Effect.promise(async () => {
    const received: Array<{ body: string; signature: string; mismatch: string | undefined }> = []
    const script: Array<{ status: number; headers?: Record<string, string>; body?: string }> = []
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (chunk) => (body += chunk))
      req.on("end", () => {
        const mismatch = req.headers["x-relay-schema-mismatch"]
        received.push({
          body,
          signature: String(req.headers["x-relay-signature"]),
          mismatch: typeof mismatch === "string" ? mismatch : undefined
        })
        const next = script.shift() ?? { status: 200 }
        res.writeHead(next.status, next.headers).end(next.body ?? "")
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`
    return { server, url, received, script }
  }),
  ({ server }) =>
    Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
)

const makeSink = (url: string) =>
  definition.make(Schema.decodeUnknownSync(definition.config)({ url, secret }), { name: "hooks" })

const events = [
  examples["user.created"],
  examples["dsync.user.updated"],
  examples["session.created"]
] as Array<Event.Any>

/** Verifies a signature header the way a receiver would (WorkOS's scheme). */
const verify = (header: string, body: string): boolean => {
  const match = /^t=(\d+), v1=([0-9a-f]{64})$/.exec(header)
  if (!match) return false
  const expected = createHmac("sha256", secret).update(`${match[1]}.${body}`).digest()
  return timingSafeEqual(expected, Buffer.from(match[2]!, "hex"))
}

describe("webhook sink", () => {
  it.live("POSTs each event as WorkOS sent it, in order, signed", () =>
    Effect.gen(function* () {
      const { url, received } = yield* receiver
      const sink = yield* makeSink(url)
      const outcomes = yield* sink.deliver(events)
      expect(outcomes).toEqual([Sink.delivered, Sink.delivered, Sink.delivered])
      expect(received.map((r) => JSON.parse(r.body))).toEqual(events)
      for (const r of received) expect(verify(r.signature, r.body)).toBe(true)
      expect(verify(received[0]!.signature, received[0]!.body.replace("user", "usr"))).toBe(false)
    }).pipe(Effect.scoped)
  )

  it.live(
    "is raw: an event that breaks the spec is POSTed as WorkOS sent it, signed, with where in a header",
    () =>
      Effect.gen(function* () {
        expect(definition.raw).toBe(true)
        const { url, received } = yield* receiver
        const sink = yield* makeSink(url)
        // A user whose name is not ASCII: the body goes as it is, the header escaped.
        const event = WorkOSStandIn.driftedEvent("wrongObject", "user.created")
        const text = JSON.stringify({ ...event, data: { ...(event.data as object), name: "Zoë…" } })
        const decoded = Event.decode(JSON.parse(text))
        if (Result.isSuccess(decoded)) throw new Error("decoded")
        const drifted = Sink.mismatched(decoded.failure)!
        const outcomes = yield* sink.deliver([events[0]!, drifted])
        expect(outcomes).toEqual([Sink.delivered, Sink.delivered])
        expect(received[0]!.mismatch).toBeUndefined()
        expect(received[1]!.body).toBe(text)
        expect(verify(received[1]!.signature, received[1]!.body)).toBe(true)
        expect(JSON.parse(received[1]!.mismatch!)).toEqual(Sink.mismatchOf(drifted))
        expect(JSON.parse(received[1]!.mismatch!).path).toBe("data.object")
      }).pipe(Effect.scoped)
  )

  it("the mismatch header is ASCII JSON whatever the reason holds", () => {
    const value = mismatchHeader({ path: 'data["é"]', reason: 'expected "x", got "y…😀"\r\n' })
    expect(/^[\x20-\x7e]*$/.test(value)).toBe(true)
    expect(JSON.parse(value)).toEqual({ path: 'data["é"]', reason: 'expected "x", got "y…😀"\r\n' })
  })

  it.live("retries 5xx and 429 (with Retry-After), holding back later events", () =>
    Effect.gen(function* () {
      const { url, received, script } = yield* receiver
      const sink = yield* makeSink(url)
      script.push(
        { status: 200 },
        { status: 429, headers: { "retry-after": "3" }, body: "slow down" }
      )
      const outcomes = yield* sink.deliver(events)
      expect(outcomes[0]).toEqual(Sink.delivered)
      expect(outcomes[1]).toMatchObject({ _tag: "Retry", reason: "HTTP 429: slow down" })
      expect(Duration.toMillis((outcomes[1] as Sink.Retry).after!)).toBe(3000)
      expect(outcomes[2]).toMatchObject({ _tag: "Retry" })
      expect(received).toHaveLength(2)

      script.push({ status: 503 })
      expect((yield* sink.deliver(events.slice(1)))[0]).toMatchObject({
        _tag: "Retry",
        reason: "HTTP 503"
      })
    }).pipe(Effect.scoped)
  )

  it.live("dead-letters an event the endpoint refuses, and stops on 401/403", () =>
    Effect.gen(function* () {
      const { url, script } = yield* receiver
      const sink = yield* makeSink(url)
      script.push({ status: 422, body: '{"error":"unsupported event"}' })
      const outcomes = yield* sink.deliver(events.slice(0, 2))
      expect(outcomes).toEqual([
        Sink.rejected('HTTP 422: {"error":"unsupported event"}'),
        Sink.delivered
      ])

      script.push({ status: 401 })
      const exit = yield* Effect.exit(sink.deliver(events))
      expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("SinkFatal")
    }).pipe(Effect.scoped)
  )

  it.live("retries when the endpoint cannot be reached", () =>
    Effect.gen(function* () {
      const sink = yield* makeSink("http://127.0.0.1:1/unreachable")
      const outcomes = yield* sink.deliver(events.slice(0, 1))
      expect(outcomes[0]).toMatchObject({ _tag: "Retry" })
      expect((outcomes[0] as Sink.Retry).reason).toMatch(/^request failed/)
    }).pipe(Effect.scoped)
  )

  it("rejects a bad config with the path of each problem", () => {
    const decode = Schema.decodeUnknownExit(definition.config)
    expect(String(decode({ url: "ftp://x", secret: "s" }))).toContain('["url"]')
    expect(String(decode({ url: "https://example.test" }))).toContain('["secret"]')
  })
})
