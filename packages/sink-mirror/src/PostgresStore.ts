/**
 * The Postgres store (`@effect/sql-pg`): the tables in an application's own database,
 * in a schema of its choice. A batch is one transaction of multi-row upserts, each
 * merging as `Mapping.merge` does, so two runners applying overlapping batches at
 * once still end in the same rows.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { SqlClient } from "effect/sql/SqlClient"
import {
  cascadeChildren,
  cascadeParams,
  cascadeSql,
  countSql,
  fromSelected,
  metaTable,
  migrations,
  type Naming,
  recordsetRows,
  recordsetUpsertSql,
  type SelectedRow,
  selectRowsSql
} from "./internal/Sql.ts"
import type { Row } from "./Mapping.ts"
import {
  type Counts,
  metaKeys,
  SchemaTooNew,
  type Shape,
  StoreError,
  schemaVersion
} from "./Store.ts"
import { type TableName, tableNames } from "./Tables.ts"

export interface Options {
  /** `postgres://user:password@host:port/database` */
  readonly url: Redacted.Redacted<string>
  /** The schema the tables are in; created when missing. Default `public`. */
  readonly schema?: string | undefined
  /** Prepended to every table name; default `workos_`. */
  readonly prefix?: string | undefined
}

/** Where the database is, for messages: host, port and name, never the password. */
export const describe = (url: Redacted.Redacted<string>): string => {
  try {
    const u = new URL(Redacted.value(url))
    return `postgres://${u.host}${u.pathname}`
  } catch {
    return "postgres (unparseable URL)"
  }
}

const describeCause = (cause: unknown): string => {
  let root: any = cause
  const outer = root?.message ?? String(cause)
  for (let i = 0; i < 5 && root?.cause instanceof Error; i++) root = root.cause
  return root?.message && root.message !== outer ? `${outer} (${root.message})` : outer
}

/** The mirror over the `SqlClient` in context. */
export const make = (
  where: string,
  naming: Naming
): Effect.Effect<Shape, StoreError | SchemaTooNew, SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    const fail = (what: string) => (cause: unknown) =>
      new StoreError({ reason: `mirror ${where}: ${what} failed: ${describeCause(cause)}`, cause })
    const run = <A extends object>(text: string, params: ReadonlyArray<unknown> = []) =>
      sql.unsafe<A>(text, params)
    const meta = metaTable(naming)

    // Under an advisory lock, so that two runners starting together take turns.
    const refused = yield* sql
      .withTransaction(
        Effect.gen(function* () {
          yield* run("SELECT pg_advisory_xact_lock(7245032)")
          if (naming.schema !== undefined)
            yield* run(`CREATE SCHEMA IF NOT EXISTS "${naming.schema}"`)
          yield* run(
            `CREATE TABLE IF NOT EXISTS ${meta} (key text PRIMARY KEY, value text NOT NULL)`
          )
          const found = yield* run<{ value: string }>(
            `SELECT value FROM ${meta} WHERE key = 'schema_version'`
          ).pipe(Effect.map((rows) => (rows[0] === undefined ? 0 : Number(rows[0].value))))
          if (found > schemaVersion)
            return new SchemaTooNew({ where, found, supported: schemaVersion })
          const steps = migrations("postgres", naming)
          for (let v = found; v < schemaVersion; v++) for (const s of steps[v]!) yield* run(s)
          yield* run(
            `INSERT INTO ${meta} (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
            [String(schemaVersion)]
          )
          return undefined
        })
      )
      .pipe(Effect.mapError(fail("migrating")))
    if (refused !== undefined) return yield* refused

    const putMeta = (key: string, value: string) =>
      run(
        `INSERT INTO ${meta} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        [key, value]
      )

    const upsertTable = (table: TableName, rows: ReadonlyArray<Row>) =>
      run(recordsetUpsertSql(naming, table), [recordsetRows(rows)])

    const apply: Shape["apply"] = (rows, last) =>
      sql
        .withTransaction(
          Effect.gen(function* () {
            const byTable = new Map<TableName, Array<Row>>()
            for (const row of rows) {
              const list = byTable.get(row.table)
              if (list === undefined) byTable.set(row.table, [row])
              else list.push(row)
            }
            // Tables in a fixed order, so that concurrent batches lock rows in the same order.
            for (const name of tableNames) {
              const list = byTable.get(name)
              if (list !== undefined) yield* upsertTable(name, list)
            }
            for (const child of cascadeChildren) {
              const params = cascadeParams(child, rows)
              if (params !== undefined) yield* run(cascadeSql("postgres", naming, child), params)
            }
            if (last !== undefined) {
              yield* putMeta(metaKeys.lastEventId, last.id)
              yield* putMeta(metaKeys.lastEventAt, last.at)
              yield* putMeta(metaKeys.lastAppliedAt, new Date().toISOString())
            }
          })
        )
        .pipe(Effect.mapError(fail("applying a batch")))

    const rows: Shape["rows"] = (table) =>
      run<SelectedRow>(selectRowsSql("postgres", naming, table)).pipe(
        Effect.map((selected) => selected.map((r) => fromSelected(table, r))),
        Effect.mapError(fail(`reading ${table}`))
      )

    const counts: Shape["counts"] = Effect.gen(function* () {
      const out: Record<string, { live: number; deleted: number }> = {}
      for (const name of tableNames) {
        const [r] = yield* run<{ live: string; deleted: string }>(countSql(naming, name))
        out[name] = { live: Number(r?.live ?? 0), deleted: Number(r?.deleted ?? 0) }
      }
      return out as Counts
    }).pipe(Effect.mapError(fail("counting rows")))

    const metaValue: Shape["meta"] = (key) =>
      run<{ value: string }>(`SELECT value FROM ${meta} WHERE key = $1`, [key]).pipe(
        Effect.map((r) => r[0]?.value),
        Effect.mapError(fail("reading its bookkeeping"))
      )

    const setMeta: Shape["setMeta"] = (key, value) =>
      putMeta(key, value).pipe(Effect.asVoid, Effect.mapError(fail("writing its bookkeeping")))

    return { where, apply, rows, counts, meta: metaValue, setMeta } satisfies Shape
  })

/** Connects to `url` (a pool that lives as long as the scope) and opens the mirror there. */
export const makeFromUrl = (
  options: Options
): Effect.Effect<Shape, StoreError | SchemaTooNew, Scope.Scope> =>
  Effect.gen(function* () {
    const where = describe(options.url)
    const client = yield* Layer.build(
      PgClient.layer({ url: options.url, connectTimeout: "10 seconds" })
    ).pipe(
      Effect.mapError(
        (cause) =>
          new StoreError({
            reason: `mirror ${where}: connecting failed: ${describeCause(cause)}`,
            cause
          })
      )
    )
    return yield* make(where, {
      prefix: options.prefix ?? "workos_",
      schema: options.schema
    }).pipe(Effect.provideContext(client))
  })
