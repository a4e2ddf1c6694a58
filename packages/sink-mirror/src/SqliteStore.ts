/**
 * The SQLite store (the default): one file, `node:sqlite`, WAL with
 * `synchronous=FULL` so that a batch reported applied survives a power cut. A batch
 * is one `BEGIN IMMEDIATE` transaction: a crash leaves all of it or none of it.
 */
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import {
  countSql,
  fromSelected,
  metaTable,
  migrations,
  type Naming,
  rowParams,
  type SelectedRow,
  selectRowsSql,
  upsertSql
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

/** The default path, relative to the config file's folder. */
export const defaultPath = "./.workos-relay/mirror.db"

export interface Options {
  readonly path: string
  /** Prepended to every table name; default `workos_`. */
  readonly prefix?: string | undefined
}

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : String(cause)

const transaction = <A>(db: DatabaseSync, f: () => A): A => {
  db.exec("BEGIN IMMEDIATE")
  try {
    const a = f()
    db.exec("COMMIT")
    return a
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK")
    throw e
  }
}

const migrate = (db: DatabaseSync, naming: Naming, where: string): SchemaTooNew | undefined =>
  transaction(db, () => {
    const meta = metaTable(naming)
    db.exec(`CREATE TABLE IF NOT EXISTS ${meta} (key TEXT PRIMARY KEY, value TEXT NOT NULL)`)
    const row = db.prepare(`SELECT value FROM ${meta} WHERE key = 'schema_version'`).get() as
      | { value: string }
      | undefined
    const found = row === undefined ? 0 : Number(row.value)
    if (found > schemaVersion) return new SchemaTooNew({ where, found, supported: schemaVersion })
    const steps = migrations("sqlite", naming)
    for (let v = found; v < schemaVersion; v++) for (const s of steps[v]!) db.exec(s)
    db.prepare(
      `INSERT INTO ${meta} (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`
    ).run(String(schemaVersion))
    return undefined
  })

/** Opens (creating and migrating when needed) the mirror at `path`; closed with the scope. */
export const make = (
  options: Options
): Effect.Effect<Shape, StoreError | SchemaTooNew, Scope.Scope> =>
  Effect.gen(function* () {
    const where = options.path
    const naming: Naming = { prefix: options.prefix ?? "workos_" }
    const fail = (what: string) => (cause: unknown) =>
      new StoreError({ reason: `mirror ${where}: ${what} failed: ${describe(cause)}`, cause })
    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true })
          const db = new DatabaseSync(options.path, { timeout: 10_000 })
          db.exec("PRAGMA journal_mode = WAL")
          db.exec("PRAGMA synchronous = FULL")
          return db
        },
        catch: fail("opening")
      }),
      (db) => Effect.sync(() => db.close())
    )
    const refused = yield* Effect.try({
      try: () => migrate(db, naming, where),
      catch: fail("migrating")
    })
    if (refused !== undefined) return yield* refused

    const meta = metaTable(naming)
    // One prepared upsert per table, made on first use.
    const upserts = new Map<TableName, StatementSync>()
    const upsert = (table: TableName) => {
      let s = upserts.get(table)
      if (s === undefined) {
        s = db.prepare(upsertSql("sqlite", naming, table, 1))
        upserts.set(table, s)
      }
      return s
    }
    const putMeta = (key: string, value: string) =>
      db
        .prepare(
          `INSERT INTO ${meta} (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`
        )
        .run(key, value)

    const apply: Shape["apply"] = (rows: ReadonlyArray<Row>, last) =>
      Effect.try({
        try: () =>
          transaction(db, () => {
            for (const row of rows)
              upsert(row.table).run(...(rowParams("sqlite", row) as Array<SQLInputValue>))
            if (last !== undefined) {
              putMeta(metaKeys.lastEventId, last.id)
              putMeta(metaKeys.lastEventAt, last.at)
              putMeta(metaKeys.lastAppliedAt, new Date().toISOString())
            }
          }),
        catch: fail("applying a batch")
      })

    const rows: Shape["rows"] = (table) =>
      Effect.try({
        try: () =>
          (
            db
              .prepare(selectRowsSql("sqlite", naming, table))
              .all() as unknown as Array<SelectedRow>
          ).map((r) => fromSelected(table, r)),
        catch: fail(`reading ${table}`)
      })

    const counts: Shape["counts"] = Effect.try({
      try: () => {
        const out: Record<string, { live: number; deleted: number }> = {}
        for (const name of tableNames) {
          const r = db.prepare(countSql(naming, name)).get() as { live: number; deleted: number }
          out[name] = { live: Number(r.live), deleted: Number(r.deleted) }
        }
        return out as Counts
      },
      catch: fail("counting rows")
    })

    const metaValue: Shape["meta"] = (key) =>
      Effect.try({
        try: () =>
          (
            db.prepare(`SELECT value FROM ${meta} WHERE key = ?`).get(key) as
              | { value: string }
              | undefined
          )?.value,
        catch: fail("reading its bookkeeping")
      })

    const setMeta: Shape["setMeta"] = (key, value) =>
      Effect.try({ try: () => void putMeta(key, value), catch: fail("writing its bookkeeping") })

    return { where, apply, rows, counts, meta: metaValue, setMeta } satisfies Shape
  })
