/**
 * Mirror benchmark: events applied per second by the mirror sink (one transaction per
 * batch of 2,000, row versions folded first) against a hand-written loop that upserts
 * one row per event, each statement its own transaction, with a guard on the event's
 * time (what public examples do; here with the same merge, so that both end in the
 * same tables). Same events, same delivery order, same run; SQLite and Postgres.
 *
 *   pnpm --filter @workos-relay/sink-mirror bench                 # 100k events
 *   BENCH_EVENTS=20000 pnpm --filter @workos-relay/sink-mirror bench
 *   DATABASE_URL=postgres://... pnpm --filter @workos-relay/sink-mirror bench
 *
 * The events: a history of organizations, users, memberships, directories, directory
 * users and groups and connections (created, updated several times, some deleted;
 * users added to groups, removed, added again), delivered as a real source does:
 * shuffled within a window of 50, ~10% of events repeated, ~15% of batches delivered
 * twice. At the end the two sets of tables are compared row by row.
 *
 * SQLite runs WAL with synchronous=FULL for both (every commit fsynced). The embedded
 * Postgres runs with fsync=off (the test helper's): point DATABASE_URL at a real
 * server for durable figures.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DatabaseSync, type SQLInputValue } from "node:sqlite"
import { PgClient } from "@effect/sql-pg"
import type { Event } from "@workos-relay/core"
import * as Postgres from "@workos-relay/testing/Postgres"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { type Naming, rowParams, upsertSql } from "../src/internal/Sql.ts"
import * as Mapping from "../src/Mapping.ts"
import * as PostgresStore from "../src/PostgresStore.ts"
import { deliverTo } from "../src/Sink.ts"
import * as SqliteStore from "../src/SqliteStore.ts"
import type { Shape } from "../src/Store.ts"
import { dump } from "../test/storeSuite.ts"
import { deliveries, history } from "../test/workload.ts"

const count = Number(process.env.BENCH_EVENTS ?? 100_000)
const batchSize = 2000

const events = history(count, 42)
// As a source hands them over, flattened: the loop takes them one at a time.
const delivered: ReadonlyArray<Event.Any> = deliveries(events, 42, { window: 50 }).flat()
const batches: Array<ReadonlyArray<Event.Any>> = []
for (let i = 0; i < delivered.length; i += batchSize)
  batches.push(delivered.slice(i, i + batchSize))

const rate = (n: number, ms: number) => Math.round((n / ms) * 1000)

const timeMirror = (store: Shape) =>
  Effect.gen(function* () {
    const start = performance.now()
    for (const batch of batches) yield* deliverTo(store)(batch)
    return performance.now() - start
  })

const report = (name: string, mirrorMs: number, loopMs: number, same: boolean) => {
  const mirror = rate(delivered.length, mirrorMs)
  const loop = rate(delivered.length, loopMs)
  console.log(
    `${name.padEnd(9)} mirror ${String(mirror).padStart(8)} events/s   loop ${String(loop).padStart(8)} events/s   ratio ${(mirror / loop).toFixed(1)}x   tables identical: ${same ? "yes" : "NO"}`
  )
  if (!same) process.exitCode = 1
}

const sameTables = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

const sqlite = Effect.gen(function* () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirror-bench-"))
  try {
    const mirror = yield* SqliteStore.make({ path: path.join(dir, "mirror.db") })
    const mirrorMs = yield* timeMirror(mirror)

    // The loop: its own file with the same tables, one autocommitted upsert per row.
    const loopPath = path.join(dir, "loop.db")
    const loopStore = yield* SqliteStore.make({ path: loopPath })
    const db = new DatabaseSync(loopPath)
    db.exec("PRAGMA synchronous = FULL")
    const naming: Naming = { prefix: "workos_" }
    const statements = new Map<string, ReturnType<DatabaseSync["prepare"]>>()
    const start = performance.now()
    for (const event of delivered) {
      for (const row of Mapping.rowsOf(event)) {
        let s = statements.get(row.table)
        if (s === undefined) {
          s = db.prepare(upsertSql("sqlite", naming, row.table, 1))
          statements.set(row.table, s)
        }
        s.run(...(rowParams("sqlite", row) as Array<SQLInputValue>))
      }
    }
    const loopMs = performance.now() - start
    db.close()
    report("SQLite", mirrorMs, loopMs, sameTables(yield* dump(mirror), yield* dump(loopStore)))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}).pipe(Effect.scoped)

const postgres = (url: Redacted.Redacted<string>) =>
  Effect.gen(function* () {
    const client = yield* Layer.build(PgClient.layer({ url, maxConnections: 1 }))
    const sql = PgClient.PgClient
    yield* Effect.gen(function* () {
      const pg = yield* sql
      yield* pg.unsafe("DROP SCHEMA IF EXISTS bench_mirror, bench_loop CASCADE")
    }).pipe(Effect.provideContext(client))
    const mirror = yield* PostgresStore.makeFromUrl({ url, schema: "bench_mirror" })
    const mirrorMs = yield* timeMirror(mirror)

    const loopStore = yield* PostgresStore.makeFromUrl({ url, schema: "bench_loop" })
    const naming: Naming = { prefix: "workos_", schema: "bench_loop" }
    const loopMs = yield* Effect.gen(function* () {
      const pg = yield* sql
      const start = performance.now()
      for (const event of delivered) {
        for (const row of Mapping.rowsOf(event))
          yield* pg.unsafe(upsertSql("postgres", naming, row.table, 1), rowParams("postgres", row))
      }
      return performance.now() - start
    }).pipe(Effect.provideContext(client))
    report("Postgres", mirrorMs, loopMs, sameTables(yield* dump(mirror), yield* dump(loopStore)))
  }).pipe(Effect.scoped)

console.log(
  `${events.length} events, ${delivered.length} delivered (repeats and out-of-order included), batches of ${batchSize}`
)
await Effect.runPromise(sqlite)
const external = process.env.DATABASE_URL
if (external !== undefined) await Effect.runPromise(postgres(Redacted.make(external)))
else {
  const database = await Postgres.start()
  try {
    await Effect.runPromise(postgres(Redacted.make(database.url)))
  } finally {
    await database.stop()
  }
}
