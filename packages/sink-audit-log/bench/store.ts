/**
 * Audit-log store benchmark: inserts per second, batched (one transaction per 2,000
 * events, as the sink writes; one batch at a time, then two in flight) against one transaction per event (the baseline, in the same run), for
 * SQLite and Postgres; then query latency over a large SQLite store (1M records by
 * default).
 *
 *   pnpm bench                                   # everything (a few minutes)
 *   BENCH_QUERY_RECORDS=200000 pnpm bench        # a smaller query store
 *   BENCH_PG_QUERY_RECORDS=1000000 pnpm bench    # also query latency on Postgres
 *   DATABASE_URL=postgres://... pnpm bench       # your Postgres instead of the embedded one
 *
 * The embedded Postgres runs with fsync=off (it is the test helper's); point
 * DATABASE_URL at a real server for durable figures. SQLite runs WAL with
 * synchronous=FULL (every commit is fsynced), as the store always does.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PgClient } from "@effect/sql-pg"
import * as Postgres from "@workos-relay/testing/Postgres"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as PostgresStore from "../src/PostgresStore.ts"
import * as Record from "../src/Record.ts"
import * as SqliteStore from "../src/SqliteStore.ts"
import type { Query, Shape } from "../src/Store.ts"

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const batchedCount = env("BENCH_BATCHED", 20_000)
const singleCount = env("BENCH_SINGLE", 1_000)
const queryRecords = env("BENCH_QUERY_RECORDS", 1_000_000)
const pgQueryRecords = env("BENCH_PG_QUERY_RECORDS", 0)
const batchSize = 2000

const types = [
  "authentication.password_succeeded",
  "authentication.password_failed",
  "authentication.sso_succeeded",
  "authentication.mfa_failed",
  "session.created",
  "session.revoked",
  "user.created",
  "user.updated",
  "user.deleted",
  "dsync.user.created",
  "dsync.user.updated",
  "dsync.user.deleted",
  "dsync.group.user_added",
  "organization_membership.created",
  "organization_membership.updated",
  "organization.updated",
  "invitation.created",
  "connection.activated",
  "role.updated",
  "vault.data.read"
]

const epoch = Date.parse("2025-01-01T00:00:00Z")

/** A realistic small event (about 450 bytes): 20 types, 500 organizations, 5,000 users (7 events in a row each), 20 s apart. */
const user = (i: number) => Math.floor(i / 7) % 5000

const event = (i: number) => ({
  object: "event",
  id: `event_${String(i).padStart(10, "0")}`,
  event: types[i % types.length]!,
  created_at: new Date(epoch + i * 20_000).toISOString(),
  data: {
    object: "user",
    id: `user_${user(i)}`,
    user_id: `user_${user(i)}`,
    organization_id: `org_${i % 500}`,
    email: `person${user(i)}@example.com`,
    ip_address: `198.51.100.${i % 250}`,
    user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36",
    created_at: new Date(epoch + i * 20_000).toISOString(),
    updated_at: new Date(epoch + i * 20_000).toISOString()
  }
})

const records = (from: number, n: number) =>
  Array.from({ length: n }, (_, k) => Record.fromEvent(event(from + k) as never))

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9

interface Row {
  readonly store: string
  readonly mode: string
  readonly events: number
  readonly seconds: number
  readonly perSecond: number
}

const measureInserts = (store: Shape, name: string): Effect.Effect<ReadonlyArray<Row>, unknown> =>
  Effect.gen(function* () {
    // Baseline: one transaction per event, as a naive sink would write.
    const single = records(1, singleCount)
    let start = process.hrtime.bigint()
    for (const r of single) yield* store.append([r])
    const singleSeconds = seconds(start)
    // Batched: one transaction per 2,000 events, as this sink writes.
    start = process.hrtime.bigint()
    for (let i = 0; i < batchedCount; i += batchSize) {
      yield* store.append(records(singleCount + 1 + i, Math.min(batchSize, batchedCount - i)))
    }
    const batchedSeconds = seconds(start)
    // Re-delivery of a whole batch: nothing is written (exactly once).
    start = process.hrtime.bigint()
    for (let i = 0; i < batchedCount; i += batchSize) {
      yield* store.append(records(singleCount + 1 + i, Math.min(batchSize, batchedCount - i)))
    }
    const duplicateSeconds = seconds(start)
    // Two batches in flight: the next batch is made into records (and, for SQLite, rows)
    // while the previous one is written (in the runner, its thread fetches and decodes
    // events meanwhile). SQLite writes on a thread of its own; Postgres in its server.
    const from = singleCount + 1 + batchedCount
    start = process.hrtime.bigint()
    yield* Effect.forEach(
      Array.from({ length: Math.ceil(batchedCount / batchSize) }, (_, k) => k * batchSize),
      (i) => store.append(records(from + i, Math.min(batchSize, batchedCount - i))),
      { concurrency: 2 }
    )
    const overlappedSeconds = seconds(start)
    start = process.hrtime.bigint()
    const report = yield* store.verify
    const verifySeconds = seconds(start)
    if (report.problem !== null) throw new Error(`verify failed: ${report.problem.message}`)
    return [
      {
        store: name,
        mode: "1 event per transaction (baseline)",
        events: singleCount,
        seconds: singleSeconds,
        perSecond: singleCount / singleSeconds
      },
      {
        store: name,
        mode: `batches of ${batchSize}`,
        events: batchedCount,
        seconds: batchedSeconds,
        perSecond: batchedCount / batchedSeconds
      },
      {
        store: name,
        mode: `re-delivered batches of ${batchSize} (skipped)`,
        events: batchedCount,
        seconds: duplicateSeconds,
        perSecond: batchedCount / duplicateSeconds
      },
      {
        store: name,
        mode: `batches of ${batchSize}, 2 in flight`,
        events: batchedCount,
        seconds: overlappedSeconds,
        perSecond: batchedCount / overlappedSeconds
      },
      {
        store: name,
        mode: "verify (walk the chain)",
        events: report.records,
        seconds: verifySeconds,
        perSecond: report.records / verifySeconds
      }
    ]
  })

const fill = (store: Shape, total: number) =>
  Effect.gen(function* () {
    const start = process.hrtime.bigint()
    const chunk = 5_000
    for (let i = 0; i < total; i += chunk) {
      yield* store.append(records(1 + i, Math.min(chunk, total - i)))
      if ((i / chunk) % 20 === 0)
        process.stderr.write(`\r  filling ${store.where}: ${i + chunk}/${total}`)
    }
    process.stderr.write("\n")
    return seconds(start)
  })

const queries = (total: number): ReadonlyArray<readonly [string, Query]> => {
  const mid = new Date(epoch + Math.floor(total / 2) * 20_000)
  return [
    ["newest 100", { limit: 100 }],
    ["--org org_42", { org: "org_42" }],
    ["--actor user_1234", { actor: "user_1234" }],
    ["--actor person1234@example.com", { actor: "person1234@example.com" }],
    ["--type user.created", { types: ["user.created"] }],
    ["--type dsync.user.*", { types: ["dsync.user.*"] }],
    ["--type authentication.*_failed", { types: ["authentication.*_failed"] }],
    [
      "--since/--until (1 day, mid-store)",
      { since: mid, until: new Date(mid.getTime() + 86_400_000) }
    ],
    [
      "--org org_42 --type user.* --since (30 days)",
      { org: "org_42", types: ["user.*"], since: new Date(mid.getTime() - 30 * 86_400_000) }
    ],
    ["--org org_none (no match)", { org: "org_none" }]
  ]
}

const measureQueries = (store: Shape, total: number) =>
  Effect.gen(function* () {
    const rows: Array<{ query: string; rows: number; median: number; p95: number }> = []
    for (const [name, q] of queries(total)) {
      const times: Array<number> = []
      let n = 0
      for (let k = 0; k < 21; k++) {
        const start = process.hrtime.bigint()
        n = (yield* store.query(q)).length
        times.push(seconds(start) * 1000)
      }
      times.sort((a, b) => a - b)
      rows.push({ query: name, rows: n, median: times[10]!, p95: times[19]! })
    }
    return rows
  })

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: ReadonlyArray<string>) =>
    `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`
  console.log(line(header))
  console.log(
    `|${widths.map((w, i) => (i === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`
  )
  for (const r of rows) console.log(line(r))
}

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "audit-bench-"))

const program = Effect.gen(function* () {
  console.log(
    `node ${process.version}, ${os.cpus().length} CPU(s) ${os.cpus()[0]?.model ?? ""}, load ${os.loadavg()[0]!.toFixed(1)}\n`
  )
  const inserts: Array<Row> = []
  const sqlite = yield* SqliteStore.make({ path: path.join(scratch, "inserts.db") })
  inserts.push(...(yield* measureInserts(sqlite, "SQLite")))
  const pg = yield* Effect.acquireRelease(
    Effect.promise(() => Postgres.start()),
    (db) => Effect.promise(() => db.stop())
  )
  const pgStore = yield* PostgresStore.makeFromUrl({ url: Redacted.make(pg.url) })
  inserts.push(
    ...(yield* measureInserts(
      pgStore,
      process.env.DATABASE_URL ? "Postgres" : "Postgres (embedded, fsync=off)"
    ))
  )

  console.log("Inserts")
  table(
    ["store", "mode", "events", "seconds", "events/s", "vs baseline"],
    inserts.map((r) => {
      const baseline = inserts.find((b) => b.store === r.store)!
      return [
        r.store,
        r.mode,
        String(r.events),
        r.seconds.toFixed(2),
        Math.round(r.perSecond).toLocaleString("en-US"),
        `${(r.perSecond / baseline.perSecond).toFixed(1)}x`
      ]
    })
  )

  const queryStore = (
    name: string,
    store: Shape,
    total: number,
    afterFill: () => Effect.Effect<void, unknown> = () => Effect.void
  ) =>
    Effect.gen(function* () {
      const fillSeconds = yield* fill(store, total)
      yield* afterFill()
      const rows = yield* measureQueries(store, total)
      console.log(
        `\nQueries over ${total.toLocaleString("en-US")} records, ${name} (filled in ${fillSeconds.toFixed(0)} s, ${Math.round(total / fillSeconds).toLocaleString("en-US")} records/s); limit 100, newest first, 21 runs each`
      )
      table(
        ["query", "rows", "median ms", "p95 ms"],
        rows.map((r) => [r.query, String(r.rows), r.median.toFixed(2), r.p95.toFixed(2)])
      )
    })

  if (queryRecords > 0) {
    const big = yield* SqliteStore.make({ path: path.join(scratch, "query.db") })
    yield* queryStore("SQLite", big, queryRecords)
  }
  if (pgQueryRecords > 0) {
    const pgBig = yield* Effect.acquireRelease(
      Effect.promise(() => Postgres.start()),
      (db) => Effect.promise(() => db.stop())
    )
    const store = yield* PostgresStore.makeFromUrl({ url: Redacted.make(pgBig.url) })
    yield* queryStore(
      "Postgres (ANALYZE after filling, as autovacuum would)",
      store,
      pgQueryRecords,
      () =>
        // Planner statistics of a table filled seconds ago are stale; autovacuum refreshes them in production.
        Effect.gen(function* () {
          const sql = yield* PgClient.PgClient
          yield* sql.unsafe("ANALYZE audit_records")
        }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(pgBig.url) })))
    )
  }
}) satisfies Effect.Effect<void, unknown, Scope.Scope>

await Effect.runPromise(Effect.scoped(program)).finally(() =>
  fs.rmSync(scratch, { recursive: true, force: true })
)
