import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Sink as CoreSink, Event } from "@workos-relay/core"
import * as SinkConformance from "@workos-relay/testing/SinkConformance"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as References from "effect/References"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { definition } from "../src/index.ts"
import * as SqliteStore from "../src/SqliteStore.ts"
import { drifted, events } from "./fixtures.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "audit-sink-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
let n = 0
let current = ""

const idsIn = (file: string): ReadonlyArray<string> => {
  const db = new DatabaseSync(file)
  try {
    return (
      db.prepare("SELECT id FROM audit_records ORDER BY seq").all() as Array<{ id: string }>
    ).map((r) => r.id)
  } finally {
    db.close()
  }
}

SinkConformance.suite({
  definition,
  config: () =>
    Effect.sync(() => {
      current = path.join(dir, `conformance-${++n}.db`)
      return { store: "sqlite", path: current }
    }),
  badConfigs: [
    { config: { retention: "soon" }, path: "retention" },
    { config: { store: "jsonl" }, path: "directory" },
    { config: { store: "postgres", url: "http://x" }, path: "url" }
  ],
  received: () => Effect.sync(() => idsIn(current))
})

describe("definition", () => {
  it.live(
    "is type audit-log; delivers every event and keeps each exactly once across re-deliveries",
    () =>
      Effect.gen(function* () {
        expect(definition.type).toBe("audit-log")
        const file = path.join(dir, "exactly-once.db")
        const config = Schema.decodeUnknownSync(definition.config)({
          path: file,
          retention: "400 days"
        })
        const sink = yield* definition.make(config, { name: "audit" })
        const batch = events(30)
        expect(yield* sink.deliver(batch)).toEqual(batch.map(() => CoreSink.delivered))
        // The pipeline re-delivers after a crash before its checkpoint: nothing changes.
        expect(yield* sink.deliver([...batch.slice(20), ...events(5, 31)])).toHaveLength(15)
        expect(idsIn(file)).toEqual(events(35).map((e) => e.id))
      })
  )

  it.live(
    "is raw: an event that breaks the spec is recorded as sent, with its schema_mismatch; one without a time is rejected",
    () =>
      Effect.gen(function* () {
        expect(definition.raw).toBe(true)
        const file = path.join(dir, "raw.db")
        const config = Schema.decodeUnknownSync(definition.config)({ path: file })
        const sink = yield* definition.make(config, { name: "audit" })
        const marked = drifted(3, 2)
        const decoded = Event.decode({ ...marked[0], id: "event_untimed", created_at: "soon" })
        if (Result.isSuccess(decoded)) throw new Error("decoded")
        const untimed = CoreSink.mismatched(decoded.failure)!
        const batch = [...events(1), ...marked, untimed, ...events(1, 5)]
        expect(yield* sink.deliver(batch)).toEqual([
          ...Array(4).fill(CoreSink.delivered),
          CoreSink.rejected(
            `event event_untimed (${marked[0]!.event}) has no created_at that is a time (got "soon"): an audit record needs one`
          ),
          CoreSink.delivered
        ])
        expect(idsIn(file)).toEqual(batch.filter((e) => e !== untimed).map((e) => e.id))
        const db = new DatabaseSync(file)
        try {
          const rows = db
            .prepare("SELECT id, event, schema_mismatch FROM audit_records ORDER BY seq")
            .all() as Array<{ id: string; event: string; schema_mismatch: string | null }>
          expect(rows.map((r) => r.schema_mismatch)).toEqual([
            null,
            ...marked.map((e) => CoreSink.formatMismatch(CoreSink.mismatchOf(e)!)),
            null
          ])
          // Whole: the event as sent (keys in canonical order, as every stored event).
          expect(rows.slice(1, 4).map((r) => JSON.parse(r.event))).toEqual(marked)
        } finally {
          db.close()
        }
      })
  )

  it.live("a relative path is relative to the config file's folder (the context's directory)", () =>
    Effect.gen(function* () {
      const folder = path.join(dir, "config-folder")
      const config = Schema.decodeUnknownSync(definition.config)({ path: "./logs/audit.db" })
      yield* Effect.scoped(
        Effect.gen(function* () {
          const sink = yield* definition.make(config, { name: "audit", directory: folder })
          yield* sink.deliver(events(3))
        })
      )
      expect(fs.existsSync(path.join(folder, "logs", "audit.db"))).toBe(true)
      expect(fs.existsSync(path.join(process.cwd(), "logs", "audit.db"))).toBe(false)
    })
  )

  it.live(
    "a log where a relative path used to point (the working directory) is not left behind",
    () =>
      Effect.gen(function* () {
        const relative = `./.left-behind-${process.pid}/audit.db`
        const was = path.resolve(relative)
        yield* Effect.scoped(SqliteStore.make({ path: was }))
        try {
          const folder = path.join(dir, "moved-config")
          const config = Schema.decodeUnknownSync(definition.config)({ path: relative })
          const error = yield* Effect.flip(
            Effect.scoped(definition.make(config, { name: "audit", directory: folder }))
          )
          expect(error).toBeInstanceOf(CoreSink.SinkFatal)
          expect(error.reason).toBe(
            `the audit log is at ${was}, relative to the working directory, but a relative path is now relative to the config file's folder (${path.join(folder, relative)}): move it there, or give its absolute path`
          )
          // Nothing was started in the new place.
          expect(fs.existsSync(path.join(folder, relative))).toBe(false)
        } finally {
          fs.rmSync(path.dirname(was), { recursive: true, force: true })
        }
      })
  )

  it.live("stops with SinkFatal when the store was written by a newer version", () =>
    Effect.gen(function* () {
      const file = path.join(dir, "newer.db")
      yield* Effect.scoped(SqliteStore.make({ path: file }))
      const db = new DatabaseSync(file)
      db.exec("UPDATE audit_meta SET value = '5' WHERE key = 'schema_version'")
      db.close()
      const config = Schema.decodeUnknownSync(definition.config)({ path: file })
      const error = yield* Effect.flip(definition.make(config, { name: "audit" }))
      expect(error).toBeInstanceOf(CoreSink.SinkFatal)
      expect(error.reason).toMatch(/^the audit log at /)
      expect(error.message).toContain("schema version 5")
    })
  )

  it.live("check: reads the store, and says when it cannot", () =>
    Effect.gen(function* () {
      const file = path.join(dir, "check.db")
      const config = Schema.decodeUnknownSync(definition.config)({ path: file })
      const sink = yield* definition.make(config, { name: "audit" })
      yield* sink.check!
      const db = new DatabaseSync(file)
      db.exec("DROP TABLE audit_records")
      db.close()
      const error = yield* Effect.flip(sink.check!)
      expect(error).toBeInstanceOf(CoreSink.SinkUnavailable)
      expect(error.message).toContain("no such table: audit_records")
    })
  )

  it.live("reports SinkUnavailable when the store cannot be written", () =>
    Effect.gen(function* () {
      const file = path.join(dir, "readonly.db")
      const config = Schema.decodeUnknownSync(definition.config)({ path: file })
      const sink = yield* definition.make(config, { name: "audit" })
      const db = new DatabaseSync(file)
      // A store that breaks under the sink (here: its table is gone).
      db.exec("DROP TABLE audit_records")
      db.close()
      const error = yield* Effect.flip(sink.deliver(events(1)))
      expect(error).toBeInstanceOf(CoreSink.SinkUnavailable)
      expect(error.message).toContain("appending a batch failed")
    })
  )

  it.live("stops with SinkFatal when the chain's row is gone (retrying cannot help)", () =>
    Effect.gen(function* () {
      const file = path.join(dir, "no-chain-row.db")
      const config = Schema.decodeUnknownSync(definition.config)({ path: file })
      const sink = yield* definition.make(config, { name: "audit" })
      yield* sink.deliver(events(2))
      const db = new DatabaseSync(file)
      db.exec("DELETE FROM audit_chain")
      db.close()
      const error = yield* Effect.flip(sink.deliver(events(1, 3)))
      expect(error).toBeInstanceOf(CoreSink.SinkFatal)
      expect(error.message).toBe(
        `SQLite audit log ${file}: appending a batch failed: the chain's head row is missing (table audit_chain has no row): the store was damaged or tampered with; restore it from a backup`
      )
    })
  )
})

describe("retention in the sink", () => {
  it.live(
    "deletes records older than the retention when the sink starts (not when made only to be checked); the chain still verifies",
    () =>
      Effect.gen(function* () {
        const file = path.join(dir, "retention.db")
        const keepAll = yield* definition.make(
          Schema.decodeUnknownSync(definition.config)({ path: file }),
          {
            name: "audit"
          }
        )
        // Events of 2026-01-01 (old) and events of a minute ago (young).
        const fresh = events(3, 100).map((e, i) => ({
          ...e,
          created_at: new Date(Date.now() - 60_000 + i).toISOString()
        }))
        yield* keepAll.deliver([...events(10), ...fresh])
        // Retention's own log lines say whether it started and when a pass is done.
        const logs: Array<string> = []
        const capture = Layer.mergeAll(
          Logger.layer([Logger.make(({ message }) => void logs.push([message].flat().join(" ")))]),
          Layer.succeed(References.MinimumLogLevel, "Debug")
        )
        // Made only to be checked (`validate --check-connections`): retention never starts.
        yield* Effect.scoped(
          Effect.gen(function* () {
            const checked = yield* definition.make(
              Schema.decodeUnknownSync(definition.config)({ path: file, retention: "30 days" }),
              { name: "audit", checkOnly: true }
            )
            yield* checked.check!
          })
        ).pipe(Effect.provide(capture))
        expect(logs.filter((l) => l.includes("retention"))).toEqual([])
        expect(idsIn(file)).toHaveLength(13)
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* definition.make(
              Schema.decodeUnknownSync(definition.config)({ path: file, retention: "30 days" }),
              { name: "audit" }
            )
            expect(logs.some((l) => l.includes("retention started (keeping 30d"))).toBe(true)
            // Retention runs in the background as the sink starts: wait for its pass.
            while (!logs.some((l) => l.includes("retention pass done")))
              yield* Effect.sleep("10 millis")
          })
        ).pipe(Effect.provide(capture))
        expect(logs.filter((l) => l.includes("retention pass done"))).toEqual([
          `audit log ${file}: retention pass done (10 deleted)`
        ])
        expect(idsIn(file)).toEqual(fresh.map((e) => e.id))
        const report = yield* Effect.scoped(
          Effect.flatMap(SqliteStore.make({ path: file }), (store) => store.verify)
        )
        expect(report.problem).toBeNull()
        expect(report.anchor.seq).toBe(10)
      })
  )
})
