import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Config from "../src/Config.ts"
import { Metrics } from "../src/Observability.ts"
import * as Pipeline from "../src/Pipeline.ts"
import * as Runner from "../src/Runner.ts"
import * as StateStore from "../src/StateStore.ts"
import { fixtures, recorded, tempDir, waitUntil } from "./helpers.ts"

const configFor = (
  standIn: WorkOSStandIn.StandIn,
  dir: string,
  sinks: Record<string, unknown>,
  source: Record<string, unknown> = {}
) =>
  Config.decode(
    {
      source: {
        type: "workos",
        apiKey: standIn.apiKey,
        baseUrl: standIn.url,
        start: "earliest",
        pollInterval: "50ms",
        ...source
      },
      state: { sqlite: Path.join(dir, "state.db") },
      shutdownTimeout: "2s",
      sinks
    },
    { file: "test", baseDir: fixtures, env: {} }
  )

const rec = (dir: string, name: string, extra: Record<string, unknown> = {}) => ({
  module: "./recording-sink.mjs",
  path: Path.join(dir, `${name}.log`),
  ...extra
})

const ids = (standIn: WorkOSStandIn.StandIn, filter: (type: string) => boolean = () => true) =>
  standIn
    .events()
    .filter((e) => filter(e.event))
    .map((e) => e.id)

/** Runs the pipeline live (buffers of 200 events) over `sinks` from the earliest event, in a fiber of its own. */
const runLive = (standIn: WorkOSStandIn.StandIn, dir: string, sinks: Record<string, unknown>) =>
  Effect.gen(function* () {
    const store = yield* StateStore.sqlite(Path.join(dir, "state.db"))
    const lease = (yield* store.acquireLease("test", 60_000))!
    const config = yield* configFor(standIn, dir, sinks)
    const opened = yield* Runner.openSource(config.source, config.sinks)
    const made = yield* Runner.makeSinks(config.sinks)
    const metrics = new Metrics()
    const stop = yield* Deferred.make<void>()
    const running = yield* Pipeline.run({
      lanes: made.map((m) => Runner.laneSpec(m as any)),
      source: opened.source,
      store,
      token: () => lease.token,
      metrics,
      start: "earliest",
      mode: { _tag: "live", pollInterval: 50 },
      stop,
      shutdownTimeout: 2000,
      bufferSize: 200
    }).pipe(Effect.forkChild)
    return { metrics, stop, running }
  })

describe("Pipeline", () => {
  it.live(
    "fetches each event once while sinks keep up; filters per sink; checkpoints in order",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 600 })
        const dir = tempDir()
        // No re-reading of recent events: each is then served exactly once to one reader.
        const config = yield* configFor(
          standIn,
          dir,
          {
            a: rec(dir, "a"),
            b: rec(dir, "b"),
            dsync: rec(dir, "dsync", { events: ["dsync.*"] })
          },
          { reReadWindow: "0s" }
        )
        const stop = yield* Deferred.make<void>()
        const metrics = new Metrics()
        let port = 0
        const running = yield* Runner.run(
          { ...config, http: { host: "127.0.0.1", port: 0 } },
          {
            stop,
            metrics,
            onListening: (p) => {
              port = p
            }
          }
        ).pipe(Effect.forkChild)
        const all = ids(standIn)
        yield* waitUntil(
          "every event in a and b",
          () =>
            recorded(Path.join(dir, "a.log")).length >= all.length &&
            recorded(Path.join(dir, "b.log")).length >= all.length
        )
        yield* waitUntil(
          "the checkpoint of dsync",
          () => metrics.sink("dsync").cursor === all[all.length - 1]
        )
        expect(recorded(Path.join(dir, "a.log"))).toEqual(all)
        expect(recorded(Path.join(dir, "b.log"))).toEqual(all)
        expect(recorded(Path.join(dir, "dsync.log"))).toEqual(
          ids(standIn, (t) => t.startsWith("dsync."))
        )
        // One shared reader: every event served once by WorkOS, not once per sink.
        const servedOnce = (expected: ReadonlyArray<string>) => {
          expect([...standIn.served.keys()].sort()).toEqual([...expected].sort())
          expect([...standIn.served.values()].every((n) => n === 1)).toBe(true)
        }
        servedOnce(all)
        expect(metrics.fetched).toBe(all.length)
        // New events while running reach everyone, still fetched once.
        const more = standIn.appendGenerated(50).map((e) => e.id)
        yield* waitUntil(
          "the new events",
          () => recorded(Path.join(dir, "b.log")).length === all.length + 50
        )
        expect(recorded(Path.join(dir, "a.log")).slice(-50)).toEqual(more)
        servedOnce([...all, ...more])
        expect(metrics.fetched).toBe(all.length + 50)
        // Health and metrics over HTTP.
        const get = (path: string) =>
          Effect.promise(() =>
            fetch(`http://127.0.0.1:${port}${path}`).then(async (r) => ({
              status: r.status,
              text: await r.text()
            }))
          )
        expect((yield* get("/healthz")).status).toBe(200)
        expect(yield* get("/readyz")).toEqual({ status: 200, text: "ready\n" })
        const text = (yield* get("/metrics")).text
        expect(text).toContain(`workos_relay_events_fetched_total ${all.length + 50}`)
        expect(text).toContain(`workos_relay_events_delivered_total{sink="a"} ${all.length + 50}`)
        expect(text).toContain(
          `workos_relay_delivery_latency_seconds_count{sink="b"} ${all.length + 50}`
        )
        expect(text).toMatch(/workos_relay_checkpoint_age_seconds\{sink="dsync"\} [\d.]+/)
        expect(text).toContain("workos_relay_lease_held 1")
        yield* Deferred.succeed(stop, undefined)
        const report = yield* Fiber.join(running)
        expect(report.lanes.every((l) => l.error === undefined)).toBe(true)
        const store = yield* StateStore.sqlite(Path.join(dir, "state.db"))
        expect((yield* store.checkpoint("a"))?.cursor).toBe(more[more.length - 1])
        expect((yield* store.checkpoint("dsync"))?.cursor).toBe(more[more.length - 1])
      }).pipe(Effect.scoped)
  )

  it.live(
    "a failing sink leaves the others flowing; retries then dead letters; rejected at once; SinkFatal stops one lane",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 300 })
        const dir = tempDir()
        const fast = { retry: { initialDelay: "10ms", maxDelay: "50ms", maxDuration: "300ms" } }
        const config = yield* configFor(standIn, dir, {
          ok: rec(dir, "ok"),
          down: rec(dir, "down", { unavailable: true, ...fast }),
          picky: rec(dir, "picky", { failTypes: ["dsync.user.created"], reject: true }),
          flaky: rec(dir, "flaky", { failTypes: ["user.created"], ...fast }),
          revoked: rec(dir, "revoked", { fatal: true })
        })
        const stop = yield* Deferred.make<void>()
        const metrics = new Metrics()
        const running = yield* Runner.run(config, { stop, metrics }).pipe(Effect.forkChild)
        const all = ids(standIn)
        yield* waitUntil(
          "ok has everything",
          () => recorded(Path.join(dir, "ok.log")).length === all.length
        )
        yield* waitUntil(
          "down has dead-lettered everything",
          () => metrics.sink("down").deadLettered === all.length,
          20_000
        )
        yield* waitUntil(
          "picky and flaky are done",
          () =>
            metrics.sink("picky").cursor === all.at(-1) &&
            metrics.sink("flaky").cursor === all.at(-1)
        )
        expect(recorded(Path.join(dir, "ok.log"))).toEqual(all)
        expect(recorded(Path.join(dir, "picky.log"))).toEqual(
          ids(standIn, (t) => t !== "dsync.user.created")
        )
        expect(recorded(Path.join(dir, "flaky.log"))).toEqual(
          ids(standIn, (t) => t !== "user.created")
        )
        expect(metrics.sink("revoked").state).toBe("failed")
        expect(metrics.sink("revoked").error).toBe("token revoked")
        yield* Deferred.succeed(stop, undefined)
        const report = yield* Fiber.join(running)
        expect(report.lanes.find((l) => l.name === "revoked")?.error).toBe("token revoked")

        const store = yield* StateStore.sqlite(Path.join(dir, "state.db"))
        const picky = yield* store.deadLetters({ sink: "picky" })
        expect(picky.map((l) => l.eventId)).toEqual(ids(standIn, (t) => t === "dsync.user.created"))
        expect(picky[0]?.error).toBe("rejected: no room for dsync.user.created")
        expect(picky[0]?.attempts).toBe(1)
        const flaky = yield* store.deadLetters({ sink: "flaky" })
        expect(flaky.map((l) => l.eventId)).toEqual(ids(standIn, (t) => t === "user.created"))
        expect(flaky[0]?.error).toMatch(/^gave up after \d+ attempts: busy with user.created$/)
        expect(flaky[0]!.attempts).toBeGreaterThan(2)
        expect(flaky[0]!.lastFailure - flaky[0]!.firstFailure).toBeGreaterThanOrEqual(300)
        expect((yield* store.deadLetters({ sink: "down" })).length).toBe(all.length)
        // The dead event is stored whole.
        expect(JSON.parse(picky[0]!.event)).toEqual(
          standIn.events().find((e) => e.id === picky[0]!.eventId)
        )
        // The fatal sink never moved its checkpoint.
        expect(yield* store.checkpoint("revoked")).toBeUndefined()
      }).pipe(Effect.scoped)
  )

  it.live(
    "lag in events: what is left, also while a batch waits to fill (not what was when the last batch was made)",
    () =>
      Effect.gen(function* () {
        // Pages of 60 that take 2 s each: the batch being filled waits for the next one.
        const standIn = yield* WorkOSStandIn.make({ events: 120, network: { latencyMs: 2000 } })
        const dir = tempDir()
        const config = yield* configFor(
          standIn,
          dir,
          { slow: rec(dir, "slow", { batch: { maxEvents: 50, maxWait: "10s" } }) },
          { pageSize: 60 }
        )
        const stop = yield* Deferred.make<void>()
        const metrics = new Metrics()
        const running = yield* Runner.run(config, { stop, metrics }).pipe(Effect.forkChild)
        // The first page: a full batch goes at once; the other 10 wait in the next batch.
        yield* waitUntil("a batch", () => recorded(Path.join(dir, "slow.log")).length === 50)
        yield* waitUntil("a lag of 10", () => metrics.sink("slow").lagEvents === 10, 1500)
        expect(recorded(Path.join(dir, "slow.log")).length).toBe(50)
        // The second page is the last: the rest goes without waiting out maxWait.
        yield* waitUntil(
          "the rest",
          () => recorded(Path.join(dir, "slow.log")).length === 120,
          6000
        )
        yield* Deferred.succeed(stop, undefined)
        yield* Fiber.join(running)
      }).pipe(Effect.scoped)
  )

  it.live(
    "stopping ends a retry's wait at once: the batch stays after the checkpoint, nothing is dead-lettered",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 100 })
        const dir = tempDir()
        const slow = { retry: { initialDelay: "1m", maxDelay: "1m", maxDuration: "1h" } }
        const config = yield* configFor(standIn, dir, {
          ok: rec(dir, "ok"),
          down: rec(dir, "down", { unavailable: true, ...slow })
        })
        const stop = yield* Deferred.make<void>()
        const metrics = new Metrics()
        const running = yield* Runner.run(config, { stop, metrics }).pipe(Effect.forkChild)
        const all = ids(standIn)
        yield* waitUntil(
          "ok is done and down waits to retry",
          () => metrics.sink("ok").cursor === all.at(-1) && metrics.sink("down").retried > 0
        )
        const stopped = Date.now()
        yield* Deferred.succeed(stop, undefined)
        const report = yield* Fiber.join(running)
        // Well within the 2 s shutdown timeout, which would have cut every lane short.
        expect(Date.now() - stopped).toBeLessThan(1000)
        expect(report.lanes.map((l) => [l.name, l.error])).toEqual([
          ["ok", undefined],
          ["down", undefined]
        ])
        const store = yield* StateStore.sqlite(Path.join(dir, "state.db"))
        expect((yield* store.checkpoint("ok"))?.cursor).toBe(all.at(-1))
        expect(yield* store.checkpoint("down")).toBeUndefined()
        expect(yield* store.deadLetters({ sink: "down" })).toEqual([])
      }).pipe(Effect.scoped)
  )

  it.live(
    "a lane that falls behind reads on its own, never holds back the others, and rejoins",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 1500 })
        const dir = tempDir()
        const { metrics, stop, running } = yield* runLive(standIn, dir, {
          fast: rec(dir, "fast"),
          slow: rec(dir, "slow", { delayMs: 40, maxEvents: 20 })
        })
        const all = ids(standIn)
        yield* waitUntil(
          "fast has everything",
          () => recorded(Path.join(dir, "fast.log")).length === all.length
        )
        // The slow sink (20 events per 40 ms) is far behind when the fast one is done.
        expect(recorded(Path.join(dir, "slow.log")).length).toBeLessThan(all.length / 2)
        yield* waitUntil(
          "slow has everything",
          () => recorded(Path.join(dir, "slow.log")).length === all.length,
          20_000
        )
        expect(recorded(Path.join(dir, "slow.log"))).toEqual(all)
        expect(metrics.fetched).toBeGreaterThan(all.length)
        // Both caught up: they share one reader again, so new events are fetched once.
        yield* waitUntil("slow rejoins", () => metrics.sink("slow").state === "running", 5000)
        const before = metrics.fetched
        standIn.appendGenerated(30)
        yield* waitUntil(
          "the new events",
          () => recorded(Path.join(dir, "slow.log")).length === all.length + 30
        )
        yield* waitUntil(
          "fast too",
          () => recorded(Path.join(dir, "fast.log")).length === all.length + 30
        )
        expect(metrics.fetched - before).toBe(30)
        yield* Deferred.succeed(stop, undefined)
        yield* Fiber.join(running)
      }).pipe(Effect.scoped)
  )

  it.live(
    "a batch goes once the reader has caught up, not after the sink's maxWait; while pages keep coming it waits for them",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 450 })
        const dir = tempDir()
        const batches = Path.join(dir, "batches.log")
        const log = Path.join(dir, "patient.log")
        // Batches of up to 1,000 events, and a maxWait far longer than the test waits.
        const { stop, running } = yield* runLive(standIn, dir, {
          patient: rec(dir, "patient", {
            maxEvents: 1000,
            maxWait: "60 seconds",
            attemptsPath: batches
          })
        })
        const all = ids(standIn)
        yield* waitUntil("the backlog", () => recorded(log).length === all.length, 20_000)
        expect(recorded(log)).toEqual(all)
        // Five pages of a backlog make one batch (two at most), not one a page.
        const sizes = () => Fs.readFileSync(batches, "utf8").trim().split("\n").map(Number)
        expect(sizes().reduce((a, b) => a + b, 0)).toBe(all.length)
        expect(sizes().length).toBeLessThanOrEqual(2)
        // Following: events that land go at the next poll, in a batch of their own.
        const more = standIn.appendGenerated(7).map((e) => e.id)
        yield* waitUntil("the new events", () => recorded(log).length === all.length + 7, 20_000)
        expect(recorded(log)).toEqual([...all, ...more])
        expect(sizes().at(-1)).toBe(7)
        yield* Deferred.succeed(stop, undefined)
        yield* Fiber.join(running)
      }).pipe(Effect.scoped)
  )

  it.live(
    "a sink slower than WorkOS, alone, is not detached: the shared reader waits for room",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 600 })
        const dir = tempDir()
        const { metrics, stop, running } = yield* runLive(standIn, dir, {
          slow: rec(dir, "slow", { delayMs: 20, maxEvents: 50 })
        })
        const all = ids(standIn)
        const states = new Set<string>()
        yield* waitUntil(
          "slow has everything",
          () => {
            states.add(metrics.sink("slow").state)
            return recorded(Path.join(dir, "slow.log")).length === all.length
          },
          20_000
        )
        expect(recorded(Path.join(dir, "slow.log"))).toEqual(all)
        // Its buffer was full most of the time, yet it never had to read on its own:
        // there was no other lane to hold back.
        expect(states.has("detached")).toBe(false)
        expect(metrics.fetched).toBe(all.length)
        yield* Deferred.succeed(stop, undefined)
        yield* Fiber.join(running)
      }).pipe(Effect.scoped)
  )

  it.live(
    "replay delivers a time range to the chosen sinks and leaves live checkpoints alone",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 400 })
        const dir = tempDir()
        const store = yield* StateStore.sqlite(Path.join(dir, "state.db"))
        const lease = (yield* store.acquireLease("live", 60_000))!
        yield* store.commit("again", "event_live_cursor", null, lease.token)
        const config = yield* configFor(standIn, dir, { again: rec(dir, "again") })
        const opened = yield* Runner.openSource(config.source, config.sinks)
        const made = yield* Runner.makeSinks(config.sinks)
        const events = standIn.events()
        const since = events[100]!.created_at
        const until = events[250]!.created_at
        const reports = yield* Pipeline.run({
          lanes: made.map((m) => Runner.laneSpec(m as any)),
          source: opened.source,
          store,
          token: () => null,
          metrics: new Metrics(),
          start: { since },
          mode: { _tag: "replay", until: Date.parse(until) },
          stop: yield* Deferred.make<void>(),
          shutdownTimeout: 2000
        })
        const expected = events
          .filter((e) => e.created_at >= since && e.created_at < until)
          .map((e) => e.id)
        expect(expected.length).toBeGreaterThanOrEqual(150)
        expect(recorded(Path.join(dir, "again.log"))).toEqual(expected)
        expect(reports).toEqual([
          { name: "again", delivered: expected.length, deadLettered: 0, error: undefined }
        ])
        expect((yield* store.checkpoint("again"))?.cursor).toBe("event_live_cursor")
      }).pipe(Effect.scoped)
  )

  it.live(
    "WorkOS rejecting the key stops the run: what was delivered is committed, nothing is lost",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 300 })
        const dir = tempDir()
        const log = Path.join(dir, "a.log")
        const config = yield* configFor(standIn, dir, { a: rec(dir, "a", { maxEvents: 10 }) })
        const all = ids(standIn)
        standIn.faults.next(
          // A transient failure: the client retries it, the run goes on.
          { status: 503 },
          { delay: 0 },
          // The second page waits until the first is delivered; then the key is revoked.
          { until: () => recorded(log).length >= 100 },
          {
            status: 401,
            body: JSON.stringify({ message: "Invalid API key", code: "unauthorized" })
          }
        )
        const stop = yield* Deferred.make<void>()
        const error = yield* Runner.run(config, { stop }).pipe(Effect.flip)
        expect(error).toBeInstanceOf(Pipeline.SourceRejected)
        expect(error.message).toBe(
          "WorkOS rejected the API key (401 Unauthorized: Invalid API key (unauthorized)): check source.apiKey / WORKOS_API_KEY (missing, wrong, revoked, or from another environment)"
        )
        expect(standIn.faults.pending()).toBe(0)
        const delivered = recorded(log)
        expect(delivered.length).toBeGreaterThanOrEqual(100)
        expect(delivered).toEqual(all.slice(0, delivered.length))
        // The checkpoint stands right after the last delivered event.
        const store = yield* StateStore.sqlite(Path.join(dir, "state.db"))
        expect((yield* store.checkpoint("a"))?.cursor).toBe(delivered[delivered.length - 1])
        // Asked once: no retrying a 401 (4 requests for the faults, none after).
        expect(standIn.requests.length).toBe(4)

        // With the key accepted again, a new run delivers the rest, each event once.
        const again = yield* Deferred.make<void>()
        const running = yield* Runner.run(config, { stop: again }).pipe(Effect.forkChild)
        yield* waitUntil("every event", () => recorded(log).length >= all.length)
        yield* Deferred.succeed(again, undefined)
        yield* Fiber.join(running)
        expect(recorded(log)).toEqual(all)
      }).pipe(Effect.scoped)
  )
})
