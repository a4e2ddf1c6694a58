/**
 * Mirror benchmark: events applied per second by the mirror sink (one transaction per
 * batch of 2,000, row versions folded first) against a hand-written loop that upserts
 * one row per event, each statement its own transaction, with a guard on the event's
 * time (what public examples do), each event in its own transaction: once with the
 * same merge and the same cascades of a parent's delete as the mirror (the tables
 * must end identical), once with the upserts only (as public examples: identical but
 * for the cascade tombstones).
 * Same events, same delivery order, same run; SQLite and Postgres.
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
import {
  cascadeChildren,
  cascadeParams,
  cascadeSql,
  type Naming,
  rowParams,
  upsertSql
} from "../src/internal/Sql.ts"
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

const report = (
  name: string,
  mirrorMs: number,
  loops: ReadonlyArray<{ label: string; ms: number; same: boolean; how: string }>
) => {
  const mirror = rate(delivered.length, mirrorMs)
  for (const [i, loop] of loops.entries()) {
    const r = rate(delivered.length, loop.ms)
    console.log(
      `${(i === 0 ? name : "").padEnd(9)} ${i === 0 ? `mirror ${String(mirror).padStart(8)} events/s` : " ".repeat(24)}   ${loop.label.padEnd(16)} ${String(r).padStart(8)} events/s   ratio ${(mirror / r).toFixed(1)}x   ${loop.how}: ${loop.same ? "yes" : "NO"}`
    )
    if (!loop.same) process.exitCode = 1
  }
}

const sameTables = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

/** The tables with the cascade tombstones lifted: what a loop without cascades leaves. */
const withoutCascades = (tables: Record<string, Array<any> | undefined>) =>
  Object.fromEntries(
    Object.entries(tables).map(([t, rows]) => [
      t,
      (rows ?? []).map((r) =>
        r.deletedWith === null ? r : { ...r, deletedAt: null, deletedWith: null }
      )
    ])
  )

/** The loop's two kinds: the same work as the mirror (cascades too), and the plain upserts public examples do. */
const kinds = [
  { cascades: true, label: "loop", how: "tables identical" },
  {
    cascades: false,
    label: "loop, no cascade",
    how: "identical but for the cascades"
  }
] as const

const sqlite = Effect.gen(function* () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirror-bench-"))
  try {
    const mirror = yield* SqliteStore.make({ path: path.join(dir, "mirror.db") })
    const mirrorMs = yield* timeMirror(mirror)
    const mirrored = yield* dump(mirror)
    const loops = []
    for (const kind of kinds) {
      // The loop: its own file with the same tables, one transaction per event.
      const loopPath = path.join(dir, `loop-${kind.cascades}.db`)
      const loopStore = yield* SqliteStore.make({ path: loopPath })
      const db = new DatabaseSync(loopPath)
      db.exec("PRAGMA synchronous = FULL")
      const naming: Naming = { prefix: "workos_" }
      const statements = new Map<string, ReturnType<DatabaseSync["prepare"]>>()
      const cascading = kind.cascades
        ? cascadeChildren.map(
            (child) => [child, db.prepare(cascadeSql("sqlite", naming, child))] as const
          )
        : []
      const start = performance.now()
      for (const event of delivered) {
        const rows = Mapping.rowsOf(event)
        if (rows.length === 0) continue
        db.exec("BEGIN")
        for (const row of rows) {
          let s = statements.get(row.table)
          if (s === undefined) {
            s = db.prepare(upsertSql("sqlite", naming, row.table, 1))
            statements.set(row.table, s)
          }
          s.run(...(rowParams("sqlite", row) as Array<SQLInputValue>))
        }
        for (const [child, cascade] of cascading) {
          const params = cascadeParams(child, rows)
          if (params !== undefined) cascade.run(...params)
        }
        db.exec("COMMIT")
      }
      const ms = performance.now() - start
      db.close()
      const looped = yield* dump(loopStore)
      const same = kind.cascades
        ? sameTables(mirrored, looped)
        : sameTables(withoutCascades(mirrored), looped)
      loops.push({ label: kind.label, ms, same, how: kind.how })
    }
    report("SQLite", mirrorMs, loops)
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
      yield* pg.unsafe("DROP SCHEMA IF EXISTS bench_mirror, bench_loop, bench_plain CASCADE")
    }).pipe(Effect.provideContext(client))
    const mirror = yield* PostgresStore.makeFromUrl({ url, schema: "bench_mirror" })
    const mirrorMs = yield* timeMirror(mirror)
    const mirrored = yield* dump(mirror)
    const loops = []
    for (const kind of kinds) {
      const schema = kind.cascades ? "bench_loop" : "bench_plain"
      const loopStore = yield* PostgresStore.makeFromUrl({ url, schema })
      const naming: Naming = { prefix: "workos_", schema }
      const ms = yield* Effect.gen(function* () {
        const pg = yield* sql
        const start = performance.now()
        for (const event of delivered) {
          const rows = Mapping.rowsOf(event)
          if (rows.length === 0) continue
          // One connection (maxConnections: 1): the event's statements in one transaction.
          yield* pg.unsafe("BEGIN")
          for (const row of rows)
            yield* pg.unsafe(
              upsertSql("postgres", naming, row.table, 1),
              rowParams("postgres", row)
            )
          if (kind.cascades)
            for (const child of cascadeChildren) {
              const params = cascadeParams(child, rows)
              if (params !== undefined)
                yield* pg.unsafe(cascadeSql("postgres", naming, child), params)
            }
          yield* pg.unsafe("COMMIT")
        }
        return performance.now() - start
      }).pipe(Effect.provideContext(client))
      const looped = yield* dump(loopStore)
      const same = kind.cascades
        ? sameTables(mirrored, looped)
        : sameTables(withoutCascades(mirrored), looped)
      loops.push({ label: kind.label, ms, same, how: kind.how })
    }
    report("Postgres", mirrorMs, loops)
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
