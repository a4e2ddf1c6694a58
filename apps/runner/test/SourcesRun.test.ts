/**
 * Several sources in one run (in process): each source has its own reader, so one
 * that does not answer holds back no other; one whose key WorkOS rejects ends the run
 * with every lane's deliveries committed, and the next run delivers the rest.
 */
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Config from "../src/Config.ts"
import * as Pipeline from "../src/Pipeline.ts"
import * as Runner from "../src/Runner.ts"
import * as StateStore from "../src/StateStore.ts"
import { fixtures, onceAroundTakeover, recorded, tempDir, waitUntil } from "./helpers.ts"

const source = (standIn: WorkOSStandIn.StandIn) => ({
  type: "workos",
  apiKey: standIn.apiKey,
  baseUrl: standIn.url,
  start: "earliest",
  pollInterval: "50ms"
})

const rec = (dir: string, name: string, extra: Record<string, unknown> = {}) => ({
  module: "./recording-sink.mjs",
  path: Path.join(dir, `${name}.log`),
  maxEvents: 10,
  ...extra
})

const setUp = Effect.gen(function* () {
  const prod = yield* WorkOSStandIn.make({ apiKey: "sk_test_prod", events: 300, seed: 31 })
  const staging = yield* WorkOSStandIn.make({ apiKey: "sk_test_staging", events: 200, seed: 32 })
  const dir = tempDir("relay-sources-run-")
  const config = yield* Config.decode(
    {
      sources: { prod: source(prod), staging: source(staging) },
      state: { sqlite: Path.join(dir, "state.db") },
      shutdownTimeout: "2s",
      sinks: {
        both: rec(dir, "both"),
        prodOnly: rec(dir, "prodOnly", { sources: ["prod"] })
      }
    },
    { file: "test", baseDir: fixtures, env: {} }
  )
  const log = (name: string) => recorded(Path.join(dir, `${name}.log`))
  const ids = (standIn: WorkOSStandIn.StandIn) => standIn.events().map((e) => e.id)
  return { prod, staging, dir, config, log, prodIds: ids(prod), stagingIds: ids(staging) }
})

const only = (got: ReadonlyArray<string>, ids: ReadonlyArray<string>) => {
  const set = new Set(ids)
  return got.filter((id) => set.has(id))
}

describe("several sources in one run", { timeout: 60_000 }, () => {
  it.live("a source that does not answer holds back no other source", () =>
    Effect.gen(function* () {
      const { prod, config, log, prodIds, stagingIds } = yield* setUp
      let prodWhenStagingDone: number | undefined
      // Prod's first answer waits until every staging event reached `both`.
      prod.faults.next({
        until: () => {
          if (only(log("both"), stagingIds).length < stagingIds.length) return false
          prodWhenStagingDone ??= only(log("both"), prodIds).length
          return true
        }
      })
      const stop = yield* Deferred.make<void>()
      const running = yield* Runner.run(config, { stop }).pipe(Effect.forkChild)
      yield* waitUntil(
        "every event of both sources",
        () =>
          only(log("both"), prodIds).length === prodIds.length &&
          log("prodOnly").length === prodIds.length,
        45_000
      )
      yield* Deferred.succeed(stop, undefined)
      const report = yield* Fiber.join(running)
      expect(prodWhenStagingDone).toBe(0)
      // Each id once, in its source's order; nothing else.
      expect(only(log("both"), prodIds)).toEqual(prodIds)
      expect(only(log("both"), stagingIds)).toEqual(stagingIds)
      expect(log("both").length).toBe(prodIds.length + stagingIds.length)
      expect(log("prodOnly")).toEqual(prodIds)
      expect(report.lanes.map((l) => `${l.name} ${l.delivered}`).sort()).toEqual([
        `both@prod ${prodIds.length}`,
        `both@staging ${stagingIds.length}`,
        `prodOnly@prod ${prodIds.length}`
      ])
    }).pipe(Effect.scoped)
  )

  it.live(
    "one source's key rejected ends the run, every lane's deliveries committed; the next run delivers the rest",
    () =>
      Effect.gen(function* () {
        const { prod, dir, config, log, prodIds, stagingIds } = yield* setUp
        // Prod answers its first page once staging is under way, then rejects the key.
        prod.faults.next(
          { until: () => only(log("both"), stagingIds).length >= 50 },
          {
            status: 401,
            body: JSON.stringify({ message: "Invalid API key", code: "unauthorized" })
          }
        )
        const stop = yield* Deferred.make<void>()
        const error = yield* Runner.run(config, { stop }).pipe(Effect.flip)
        expect(error).toBeInstanceOf(Pipeline.SourceRejected)
        expect(prod.faults.pending()).toBe(0)
        const store = yield* StateStore.sqlite(Path.join(dir, "state.db"))
        // What each lane delivered is what its checkpoint says: the last of it, per source.
        const delivered = {
          "both/prod": only(log("both"), prodIds),
          "both/staging": only(log("both"), stagingIds),
          "prodOnly/prod": log("prodOnly")
        }
        expect(delivered["both/staging"].length).toBeGreaterThanOrEqual(50)
        for (const [key, got] of Object.entries(delivered)) {
          const [sink, source] = key.split("/") as [string, string]
          const all = source === "prod" ? prodIds : stagingIds
          expect(got, key).toEqual(all.slice(0, got.length))
          const checkpoint = yield* store.checkpoint(sink, source)
          if (got.length > 0) expect(checkpoint?.cursor, key).toBe(got.at(-1))
        }

        // The key accepted again: the rest, each event once (nothing was delivered past a checkpoint).
        const again = yield* Deferred.make<void>()
        const running = yield* Runner.run(config, { stop: again }).pipe(Effect.forkChild)
        yield* waitUntil(
          "every event",
          () =>
            log("both").length >= prodIds.length + stagingIds.length &&
            log("prodOnly").length >= prodIds.length,
          45_000
        )
        yield* Deferred.succeed(again, undefined)
        yield* Fiber.join(running)
        expect(onceAroundTakeover(only(log("both"), prodIds), prodIds, 0)).toBeUndefined()
        expect(onceAroundTakeover(only(log("both"), stagingIds), stagingIds, 0)).toBeUndefined()
        expect(log("prodOnly")).toEqual(prodIds)
      }).pipe(Effect.scoped)
  )
})
