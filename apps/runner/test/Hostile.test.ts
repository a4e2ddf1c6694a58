/**
 * The runner against servers that behave as real ones were seen to (the stand-in's
 * quirks, and its hostile preset with all of them on). Each test counts the ids each
 * sink received, and the requests where a loop could hide.
 */
import { spawn } from "node:child_process"
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

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")

const configFor = (
  standIn: WorkOSStandIn.StandIn,
  dir: string,
  source: Record<string, unknown>,
  sinks: ReadonlyArray<string> = ["a"]
) =>
  Config.decode(
    {
      source: {
        type: "workos",
        apiKey: standIn.apiKey,
        baseUrl: standIn.url,
        pollInterval: "50ms",
        ...source
      },
      state: { sqlite: Path.join(dir, "state.db") },
      shutdownTimeout: "2s",
      sinks: Object.fromEntries(
        sinks.map((name) => [
          name,
          { module: "./recording-sink.mjs", path: Path.join(dir, `${name}.log`) }
        ])
      )
    },
    { file: "test", baseDir: fixtures, env: {} }
  )

/** `Runner.run` in a fiber of its own, until `stop`. */
const startRunner = (config: Config.RelayConfig) =>
  Effect.gen(function* () {
    const stop = yield* Deferred.make<void>()
    const metrics = new Metrics()
    const fiber = yield* Runner.run(config, { stop, metrics }).pipe(Effect.forkChild)
    const end = Deferred.succeed(stop, undefined).pipe(Effect.andThen(Fiber.join(fiber)))
    return { metrics, end }
  })

/** `workos-relay status` as a user runs it, on the store in `dir`. */
const statusOf = (standIn: WorkOSStandIn.StandIn, dir: string) =>
  Effect.promise(() => {
    const file = Path.join(dir, "status.yaml")
    Fs.writeFileSync(
      file,
      [
        "source:",
        "  type: workos",
        `  apiKey: ${standIn.apiKey}`,
        `  baseUrl: ${standIn.url}`,
        "state:",
        `  sqlite: ${Path.join(dir, "state.db")}`,
        "sinks:",
        "  a:",
        `    module: ${Path.join(fixtures, "recording-sink.mjs")}`,
        `    path: ${Path.join(dir, "status-a.log")}`
      ].join("\n")
    )
    return new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        ["--conditions=@workos-relay/source", bin, "status", "-c", file],
        { stdio: ["ignore", "pipe", "inherit"] }
      )
      let stdout = ""
      child.stdout.on("data", (d) => {
        stdout += d
      })
      child.on("exit", (code) => resolve({ code, stdout }))
    })
  })

/** Requests to `/events` so far. */
const eventRequests = (standIn: WorkOSStandIn.StandIn) =>
  standIn.requests.filter((r) => r.url.pathname === "/events").length

describe("the runner against hostile servers", () => {
  it.live("a fresh `latest` start delivers only events created after it, whatever the server", () =>
    Effect.gen(function* () {
      const standIn = yield* WorkOSStandIn.make({ events: 300, quirks: WorkOSStandIn.hostile })
      const dir = tempDir()
      const runner = yield* startRunner(yield* configFor(standIn, dir, { start: "latest" }))
      yield* waitUntil("a first poll", () => eventRequests(standIn) >= 1)
      const appended = standIn.appendGenerated(40).map((e) => e.id)
      yield* waitUntil(
        "40 deliveries",
        () => recorded(Path.join(dir, "a.log")).length >= 40,
        20_000
      )
      yield* Effect.sleep(300)
      yield* runner.end
      // Late commits arrive in the order they became visible: compare the sets, and no repeat.
      const got = recorded(Path.join(dir, "a.log"))
      expect([...got].sort()).toEqual([...appended].sort())
      expect(new Set(got).size).toBe(got.length)
    }).pipe(Effect.scoped)
  )

  it.live(
    "a runner stopped before its first event loses nothing created before the next start",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 200, quirks: { ignoreOrder: true } })
        const dir = tempDir()
        const config = yield* configFor(standIn, dir, { start: "latest" })
        const first = yield* startRunner(config)
        yield* waitUntil("a first poll", () => eventRequests(standIn) >= 1)
        yield* first.end
        // The start was saved at once, as a time: nothing was delivered yet.
        const store = yield* StateStore.sqlite(Path.join(dir, "state.db"))
        const saved = (yield* store.checkpoint("a"))?.cursor
        expect(saved).toMatch(/^\d{4}-\d{2}-\d{2}T/)
        expect(recorded(Path.join(dir, "a.log"))).toEqual([])
        // Events created while no runner runs, then a second start.
        const between = standIn.appendGenerated(34).map((e) => e.id)
        const second = yield* startRunner(config)
        yield* waitUntil(
          "34 deliveries",
          () => recorded(Path.join(dir, "a.log")).length >= 34,
          20_000
        )
        yield* second.end
        expect(recorded(Path.join(dir, "a.log"))).toEqual(between)
      }).pipe(Effect.scoped)
  )

  it.live(
    "`start` at a time on a server that ignores the range delivers exactly the events from then on",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 500, quirks: { ignoreRange: true } })
        const all = standIn.events()
        const since = all[420]!.created_at
        const dir = tempDir()
        const runner = yield* startRunner(yield* configFor(standIn, dir, { start: since }))
        const expected = all.filter((e) => e.created_at >= since).map((e) => e.id)
        yield* waitUntil(
          "the range",
          () => recorded(Path.join(dir, "a.log")).length >= expected.length
        )
        yield* Effect.sleep(200)
        yield* runner.end
        expect(recorded(Path.join(dir, "a.log"))).toEqual(expected)
      }).pipe(Effect.scoped)
  )

  it.live("replay delivers exactly its range from a server that ignores the range", () =>
    Effect.gen(function* () {
      const standIn = yield* WorkOSStandIn.make({
        events: 500,
        quirks: { ignoreRange: true, afterBackwards: true }
      })
      const events = standIn.events()
      const since = events[200]!.created_at
      const until = events[260]!.created_at
      const dir = tempDir()
      const config = yield* configFor(standIn, dir, { start: "earliest" })
      const opened = yield* Runner.openSource(config.source, config.sinks)
      const made = yield* Runner.makeSinks(config.sinks)
      const reports = yield* Pipeline.run({
        lanes: made.map((m) => Runner.laneSpec(m as any)),
        source: opened.source,
        store: yield* StateStore.sqlite(Path.join(dir, "state.db")),
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
      expect(recorded(Path.join(dir, "a.log"))).toEqual(expected)
      expect(reports[0]).toMatchObject({ delivered: expected.length, deadLettered: 0 })
    }).pipe(Effect.scoped)
  )

  for (const quirk of ["afterBackwards", "stuckAfter", "repeatLastEvent"] as const) {
    it.live(
      `${quirk}: two sinks get every event once, and the requests stay near one per page`,
      () =>
        Effect.gen(function* () {
          const standIn = yield* WorkOSStandIn.make({ events: 1500, quirks: { [quirk]: true } })
          const all = standIn.events().map((e) => e.id)
          const dir = tempDir()
          const runner = yield* startRunner(
            yield* configFor(standIn, dir, { start: "earliest", pollInterval: "100ms" }, ["a", "b"])
          )
          yield* waitUntil(
            "both sinks to get every event",
            () =>
              recorded(Path.join(dir, "a.log")).length >= all.length &&
              recorded(Path.join(dir, "b.log")).length >= all.length
          )
          const requests = eventRequests(standIn)
          yield* Effect.sleep(500)
          const idle = eventRequests(standIn) - requests
          yield* runner.end
          expect(recorded(Path.join(dir, "a.log"))).toEqual(all)
          expect(recorded(Path.join(dir, "b.log"))).toEqual(all)
          // 15 pages; a cursor that goes back would cost a request per event or spin.
          expect(requests).toBeLessThanOrEqual(40)
          // Caught up: a poll per 100 ms, each reading the re-read window again.
          expect(idle).toBeLessThanOrEqual(15)
        }).pipe(Effect.scoped)
    )
  }

  it.live("the hostile preset: events committed late and out of order reach every sink once", () =>
    Effect.gen(function* () {
      const standIn = yield* WorkOSStandIn.make({
        events: 200,
        quirks: { ...WorkOSStandIn.hostile, visibilityDelayMs: 500 }
      })
      const seeded = standIn.events().map((e) => e.id)
      const dir = tempDir()
      const runner = yield* startRunner(
        yield* configFor(standIn, dir, { start: "earliest", pollInterval: "50ms" }, ["a", "b"])
      )
      const appended: Array<string> = []
      for (let i = 0; i < 20; i++) {
        appended.push(...standIn.appendGenerated(10).map((e) => e.id))
        yield* Effect.sleep(30)
      }
      const expected = [...seeded, ...appended].sort()
      for (const sink of ["a", "b"])
        yield* waitUntil(
          `sink ${sink} to get every event`,
          () => recorded(Path.join(dir, `${sink}.log`)).length >= expected.length
        )
      yield* Effect.sleep(500)
      yield* runner.end
      for (const sink of ["a", "b"]) {
        const got = recorded(Path.join(dir, `${sink}.log`))
        expect([...got].sort()).toEqual(expected)
      }
    }).pipe(Effect.scoped)
  )

  it.live(
    "a checkpoint older than retention: the gap is reported with its range, and the relay goes on (or stops)",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({
          events: 200,
          quirks: { retentionMs: 2 * 86_400_000 }
        })
        const all = standIn.events()
        const kept = all.filter((e) => Date.parse(e.created_at) >= Date.now() - 2 * 86_400_000)
        expect(kept.length).toBeGreaterThan(0)
        expect(kept.length).toBeLessThan(all.length)
        for (const onGap of ["continue", "stop"] as const) {
          const dir = tempDir()
          const store = yield* StateStore.sqlite(Path.join(dir, "state.db"))
          const lease = (yield* store.acquireLease("setup", 60_000))!
          yield* store.commit("a", all[0]!.id, all[0]!.created_at, lease.token)
          yield* store.releaseLease("setup", lease.token)
          const config = yield* configFor(standIn, dir, { retention: "2d", onGap })
          const stop = yield* Deferred.make<void>()
          const metrics = new Metrics()
          const fiber = yield* Runner.run(config, { stop, metrics }).pipe(
            Effect.result,
            Effect.forkChild
          )
          if (onGap === "continue") {
            yield* waitUntil(
              "the kept events",
              () => recorded(Path.join(dir, "a.log")).length >= kept.length
            )
            yield* Deferred.succeed(stop, undefined)
            yield* Fiber.join(fiber)
            expect(recorded(Path.join(dir, "a.log"))).toEqual(kept.map((e) => e.id))
            expect(metrics.gaps).toBe(1)
            expect(metrics.lastGap).toContain(
              `between ${all[0]!.created_at} and ${kept[0]!.created_at}`
            )
            expect(metrics.render()).toContain("workos_relay_source_gaps_total 1")
          } else {
            const result = yield* Fiber.join(fiber)
            expect(result._tag).toBe("Failure")
            expect(String((result as any).failure?.message)).toContain("may be lost")
            expect(recorded(Path.join(dir, "a.log"))).toEqual([])
          }
          // Kept for `status`, which says where the gap was and what the source did.
          const gaps = yield* store.gaps(3)
          expect(gaps.total).toBe(1)
          expect(gaps.recent[0]).toMatchObject({
            from: Date.parse(all[0]!.created_at),
            cursor: all[0]!.id,
            action: onGap === "stop" ? "stopped" : "continued"
          })
          const status = yield* statusOf(standIn, dir)
          expect(status.code).toBe(0)
          expect(status.stdout).toContain("gaps: 1 detected")
          expect(status.stdout).toContain(
            onGap === "stop" ? "the source stopped there" : "the source went on"
          )
          expect(status.stdout).toContain(`created between ${all[0]!.created_at} and`)
        }
      }).pipe(Effect.scoped)
  )
})
