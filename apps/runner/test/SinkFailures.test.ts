import * as fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Sink, WorkOS } from "@workos-relay/core"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Stream from "effect/Stream"
import * as Config from "../src/Config.ts"
import { Metrics } from "../src/Observability.ts"
import * as Pipeline from "../src/Pipeline.ts"
import * as Runner from "../src/Runner.ts"
import * as StateStore from "../src/StateStore.ts"
import { fixtures, tempDir, waitUntil } from "./helpers.ts"

const baseDir = Path.join(fixtures, "sink-failures")

/** One sink `s` of the misbehaving fixture, with these options. */
const configWith = (options: Record<string, unknown>, source: unknown = { type: "demo" }) =>
  Config.decode(
    {
      source,
      state: { sqlite: Path.join(tempDir(), "state.db") },
      shutdownTimeout: "2s",
      sinks: { s: { module: "./misbehaving-sink.mjs", ...options } }
    },
    { file: "test", baseDir, env: {} }
  )

const makeOne = (options: Record<string, unknown>) =>
  Effect.gen(function* () {
    const config = yield* configWith(options)
    const [made] = yield* Runner.makeSinks(config.sinks)
    return made!
  })

/** The log lines of an effect, as `LEVEL message`, and whether any came with a cause. */
const capturingLogs = () => {
  const lines: Array<string> = []
  let withCause = 0
  const logger = Logger.make(({ logLevel, message, cause }) => {
    const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
    lines.push(`${logLevel.toUpperCase()} ${text}`)
    if (cause.reasons.length > 0) withCause++
  })
  return { lines, withCause: () => withCause, layer: Logger.layer([logger]) }
}

const fastRetry = { initialDelay: 5, maxDelay: 10, maxDuration: 60_000 }

/** A lane over an inline sink, for `Pipeline.deliver`. */
const laneOf = (
  sink: Pick<Sink.Sink, "deliver">,
  retry: Pipeline.LaneSpec["retry"] = fastRetry
): Pipeline.LaneSpec => ({
  name: "s",
  sink: { batch: { maxEvents: 10, maxWait: 10 }, ...sink },
  batch: { maxEvents: 10, maxWait: 10 },
  retry,
  accepts: () => true
})

/** The error Node raises on a full disk: from /dev/full where there is one, else shaped as it. */
const diskFullError = (): NodeJS.ErrnoException => {
  try {
    fs.writeFileSync("/dev/full", "x")
  } catch (e) {
    return e as NodeJS.ErrnoException
  }
  return Object.assign(new Error("ENOSPC: no space left on device, write"), {
    code: "ENOSPC",
    errno: -28,
    syscall: "write"
  })
}

const events = [
  { id: "event_1", event: "user.created" },
  { id: "event_2", event: "user.created" }
]

describe("sink failures", () => {
  describe("the batch settings a sink's make returns are checked when it is made", () => {
    it.effect("maxEvents 0 (which made the lane spin for ever) stops the sink from starting", () =>
      Effect.gen(function* () {
        const made = yield* makeOne({ sinkBatch: { maxEvents: 0, maxWait: "1 second" } })
        expect(made.sink).toBeUndefined()
        expect(made.error).toBe(
          "batch.maxEvents must be an integer of at least 1, got 0 (in the batch settings its make returned)"
        )
      }).pipe(Effect.scoped)
    )

    it.effect("an unparseable maxWait, a bad maxBytes, every problem at once", () =>
      Effect.gen(function* () {
        const forever = yield* makeOne({ sinkBatch: { maxEvents: 10, maxWait: "forever-ish" } })
        expect(forever.error).toBe(
          'batch.maxWait must be a duration such as "500 millis" or "1 second", got "forever-ish" (in the batch settings its make returned)'
        )
        const all = yield* makeOne({ sinkBatch: { maxEvents: 1.5, maxBytes: 0, maxWait: -1 } })
        expect(all.error).toBe(
          'batch.maxEvents must be an integer of at least 1, got 1.5; batch.maxBytes must be an integer of at least 1, got 0; batch.maxWait must be a duration such as "500 millis" or "1 second", got -1 (in the batch settings its make returned)'
        )
        const none = yield* makeOne({ sinkBatch: null })
        expect(none.error).toBe(
          "its make returned no batch settings: return { batch: { maxEvents, maxWait }, deliver }"
        )
      }).pipe(Effect.scoped)
    )

    it.effect("good settings pass, durations as Effect or as the config file writes them", () =>
      Effect.gen(function* () {
        for (const [maxWait, ms] of [
          ["1 second", 1000],
          ["500ms", 500],
          [250, 250],
          ["0 millis", 0]
        ] as const) {
          const made = yield* makeOne({ sinkBatch: { maxEvents: 5, maxBytes: 1000, maxWait } })
          expect(made.error).toBeUndefined()
          expect(Runner.laneSpec(made as any).batch).toEqual({
            maxEvents: 5,
            maxBytes: 1000,
            maxWait: ms
          })
        }
      }).pipe(Effect.scoped)
    )
  })

  describe("failures outside the contract are fatal, named and readable", () => {
    it.live("deliver failing with a plain value stops the sink with it described", () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 20 })
        const config = yield* configWith(
          { deliverFails: { code: 42 } },
          { type: "workos", apiKey: standIn.apiKey, baseUrl: standIn.url, start: "earliest" }
        )
        const logs = capturingLogs()
        const stop = yield* Deferred.make<void>()
        const metrics = new Metrics()
        const running = yield* Runner.run(config, { stop, metrics }).pipe(
          Effect.provide(logs.layer),
          Effect.forkChild
        )
        yield* waitUntil("the sink to stop", () => metrics.sink("s").state === "failed")
        yield* Deferred.succeed(stop, undefined)
        const report = yield* Fiber.join(running)
        expect(report.lanes).toEqual([
          { name: "s", delivered: 0, deadLettered: 0, error: "{ code: 42 }" }
        ])
        expect(metrics.sink("s").error).toBe("{ code: 42 }")
        expect(logs.lines).toContain("ERROR sink s stopped: { code: 42 }")
      }).pipe(Effect.scoped)
    )

    it.effect("deliver failing with an Error of its own: its message", () =>
      Effect.gen(function* () {
        // A real full-disk error, as Node raises it (/dev/full refuses every write).
        const diskFull = diskFullError()
        const error = yield* Pipeline.deliver(
          laneOf({ deliver: () => Effect.fail(diskFull as any) }),
          events,
          new Metrics(),
          Date.now()
        ).pipe(Effect.flip)
        expect(error).toBeInstanceOf(Sink.SinkFatal)
        expect(diskFull.code).toBe("ENOSPC")
        expect(error.reason).toBe(diskFull.message)
      })
    )

    it.effect("a failing connection check says what it failed with", () =>
      Effect.gen(function* () {
        const made = yield* makeOne({ checkFails: { code: 43 } })
        const error = yield* made.sink!.check!.pipe(Effect.flip)
        expect(error.message).toBe("{ code: 43 }")
        const plain = yield* makeOne({
          checkFails: { _tag: "SinkUnavailable", reason: "HTTP 503" }
        })
        const unavailable = yield* plain.sink!.check!.pipe(Effect.flip)
        expect(unavailable).toBeInstanceOf(Sink.SinkUnavailable)
        expect(unavailable.message).toBe("HTTP 503")
      }).pipe(Effect.scoped)
    )

    it.effect("make failing with a plain value: the sink could not start, and why", () =>
      Effect.gen(function* () {
        const made = yield* makeOne({ makeFails: { code: 42 } })
        expect(made.sink).toBeUndefined()
        expect(made.error).toBe("{ code: 42 }")
        const fatal = yield* makeOne({ makeFails: { _tag: "SinkFatal", reason: "token revoked" } })
        expect(fatal.error).toBe("token revoked")
      }).pipe(Effect.scoped)
    )

    it.live(
      "deliver throwing (even before it returns an Effect) is a crash: retried, then dead-lettered",
      () =>
        Effect.gen(function* () {
          const retry = { initialDelay: 1, maxDelay: 1, maxDuration: 20 }
          for (const deliver of [
            () => {
              throw { weird: true }
            },
            () =>
              Effect.sync(() => {
                throw { weird: true }
              })
          ]) {
            const result = yield* Pipeline.deliver(
              laneOf({ deliver: deliver as any }, retry),
              events,
              new Metrics(),
              Date.now()
            ).pipe(Effect.provide(capturingLogs().layer))
            expect(result.delivered).toBe(0)
            expect(result.deadLetters.map((l) => l.error)).toEqual([
              expect.stringMatching(
                /^gave up after \d+ attempts: the sink crashed: \{ weird: true \}$/
              ),
              expect.stringMatching(
                /^gave up after \d+ attempts: the sink crashed: \{ weird: true \}$/
              )
            ])
          }
        })
    )
  })

  it.effect("make throwing: the sink could not start, with the message, no stack", () =>
    Effect.gen(function* () {
      const made = yield* makeOne({ makeThrows: "error:boom" })
      expect(made.sink).toBeUndefined()
      expect(made.error).toBe("boom")
      const odd = yield* makeOne({ makeThrows: { weird: true } })
      expect(odd.error).toBe("{ weird: true }")
    }).pipe(Effect.scoped)
  )

  describe("a sink that keeps failing is logged at warning level, not only at debug", () => {
    /** A sink unavailable for its first `failures` attempts. */
    const failingFirst = (failures: number) => {
      let attempts = 0
      return laneOf({
        deliver: (batch) =>
          ++attempts <= failures
            ? Effect.fail(new Sink.SinkUnavailable({ reason: "HTTP 503" }))
            : Effect.succeed(batch.map(() => Sink.delivered))
      })
    }
    const withoutTimes = (line: string) =>
      line.replace(/ in [\d.]+m?s/, " in <t>").replace(/ over [\d.]+m?s/, " over <t>")

    it.live("a warning at the first failure, one when it delivers again", () =>
      Effect.gen(function* () {
        const logs = capturingLogs()
        const result = yield* Pipeline.deliver(
          failingFirst(4),
          events,
          new Metrics(),
          Date.now()
        ).pipe(Effect.provide(logs.layer))
        expect(result.delivered).toBe(2)
        // Debug lines are below the default level.
        expect(logs.lines.filter((l) => !l.startsWith("DEBUG")).map(withoutTimes)).toEqual([
          "WARN sink s: delivery failed: HTTP 503; retrying 2 event(s) in <t>",
          "INFO sink s: delivering again after 4 failed attempt(s) over <t>"
        ])
      })
    )

    it.live("while it keeps failing, again at most every `warnEvery`, across batches", () =>
      Effect.gen(function* () {
        const logs = capturingLogs()
        const streak = Pipeline.failureStreak(0)
        // A first batch dead-lettered at its first failure (no retrying at all)...
        const noRetry = { ...failingFirst(1), retry: { ...fastRetry, maxDuration: 0 } }
        const first = yield* Pipeline.deliver(
          noRetry,
          events,
          new Metrics(),
          Date.now(),
          Effect.never,
          streak
        ).pipe(Effect.provide(logs.layer))
        expect(first.deadLetters.length).toBe(2)
        // ...and the next batch's failures go on counting: the sink never delivered in between.
        yield* Pipeline.deliver(
          failingFirst(2),
          events,
          new Metrics(),
          Date.now(),
          Effect.never,
          streak
        ).pipe(Effect.provide(logs.layer))
        expect(logs.lines.filter((l) => !l.startsWith("DEBUG")).map(withoutTimes)).toEqual([
          "WARN sink s: still failing after 2 attempts over <t>: HTTP 503; retrying 2 event(s) in <t>",
          "WARN sink s: still failing after 3 attempts over <t>: HTTP 503; retrying 2 event(s) in <t>",
          "INFO sink s: delivering again after 3 failed attempt(s) over <t>"
        ])
      })
    )
  })

  it.live("each dead letter keeps its own event's reason, not the last one retried", () =>
    Effect.gen(function* () {
      const perEvent = laneOf(
        {
          deliver: (batch) =>
            Effect.succeed(batch.map((e) => Sink.retry(`no room for ${(e as { id: string }).id}`)))
        },
        { ...fastRetry, maxDuration: 0 }
      )
      const result = yield* Pipeline.deliver(perEvent, events, new Metrics(), Date.now())
      expect(result.deadLetters.map((l) => l.error)).toEqual([
        "gave up after 1 attempts: no room for event_1",
        "gave up after 1 attempts: no room for event_2"
      ])
    })
  )

  it.live("WorkOS unreachable: the error log says why in one line, without a stack trace", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const store = yield* StateStore.sqlite(Path.join(dir, "state.db"))
      const lease = (yield* store.acquireLease("test", 60_000))!
      const unreachable = new WorkOS.WorkOSUnavailableError({
        request: "GET /events",
        status: undefined,
        reason: "connect ECONNREFUSED 127.0.0.1:1",
        retryAfter: undefined,
        attempts: 3
      })
      const source: Pipeline.Source = { read: () => Stream.fail(unreachable) }
      for (const mode of [
        { _tag: "live", pollInterval: 50 },
        { _tag: "replay", until: Date.now() }
      ] as const) {
        const logs = capturingLogs()
        const stop = yield* Deferred.make<void>()
        const running = yield* Pipeline.run({
          lanes: [laneOf({ deliver: (batch) => Effect.succeed(batch.map(() => Sink.delivered)) })],
          source,
          store,
          token: () => lease.token,
          metrics: new Metrics(),
          start: "earliest",
          mode,
          stop,
          shutdownTimeout: 500
        }).pipe(Effect.provide(logs.layer), Effect.forkChild)
        yield* waitUntil("the error log", () => logs.lines.length > 0)
        yield* Deferred.succeed(stop, undefined)
        yield* Fiber.join(running)
        expect(logs.lines[0]).toBe(
          mode._tag === "live"
            ? "ERROR reading WorkOS failed; retrying in 1.0s: WorkOS did not answer GET /events after 3 attempts: connect ECONNREFUSED 127.0.0.1:1"
            : "ERROR sink s: reading WorkOS failed; retrying in 1.0s: WorkOS did not answer GET /events after 3 attempts: connect ECONNREFUSED 127.0.0.1:1"
        )
        expect(logs.withCause()).toBe(0)
      }
    }).pipe(Effect.scoped)
  )
})
