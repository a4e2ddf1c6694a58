/**
 * The SQLite store (the default): one file, `node:sqlite`, WAL with
 * `synchronous=FULL` so that a batch reported applied survives a power cut. A batch
 * is one `BEGIN IMMEDIATE` transaction: a crash leaves all of it or none of it.
 *
 * The busy timeout is zero: a write lock held by another process (an application
 * reading and writing the mirror) is waited out between attempts with `Effect.sleep`
 * (`internal/Busy.ts`), never on the main thread; after `lockWait` the operation
 * fails with a `StoreError` the sink reports as unavailable, and the runner retries
 * the batch.
 */
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { defaultLockWait, patiently } from "./internal/Busy.ts"
import {
  cascadeChildren,
  cascadeParams,
  cascadeSql,
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
  /** How long (ms) an operation waits out another process's lock before it fails; default 30 s. */
  readonly lockWait?: number | undefined
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

/** The schema version the file is at (0: none yet), read without taking the write lock. */
const versionOf = (db: DatabaseSync, meta: string): number => {
  const exists = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
    .get(meta.slice(1, -1))
  if (exists === undefined) return 0
  const row = db.prepare(`SELECT value FROM ${meta} WHERE key = 'schema_version'`).get() as
    | { value: string }
    | undefined
  return row === undefined ? 0 : Number(row.value)
}

/** Migrates the file when it is behind; a file already current is only read (no write lock). */
const migrate = (db: DatabaseSync, naming: Naming, where: string): SchemaTooNew | undefined => {
  const meta = metaTable(naming)
  const seen = versionOf(db, meta)
  if (seen > schemaVersion)
    return new SchemaTooNew({ where, found: seen, supported: schemaVersion })
  if (seen === schemaVersion) return undefined
  return transaction(db, () => {
    db.exec(`CREATE TABLE IF NOT EXISTS ${meta} (key TEXT PRIMARY KEY, value TEXT NOT NULL)`)
    // Again under the lock: another process may have migrated meanwhile.
    const found = versionOf(db, meta)
    if (found > schemaVersion) return new SchemaTooNew({ where, found, supported: schemaVersion })
    const steps = migrations("sqlite", naming)
    for (let v = found; v < schemaVersion; v++) for (const s of steps[v]!) db.exec(s)
    db.prepare(
      `INSERT INTO ${meta} (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`
    ).run(String(schemaVersion))
    return undefined
  })
}

/** Opens (creating and migrating when needed) the mirror at `path`; closed with the scope. */
export const make = (
  options: Options
): Effect.Effect<Shape, StoreError | SchemaTooNew, Scope.Scope> =>
  Effect.gen(function* () {
    const where = options.path
    const naming: Naming = { prefix: options.prefix ?? "workos_" }
    const fail = (what: string) => (cause: unknown) =>
      new StoreError({ reason: `mirror ${where}: ${what} failed: ${describe(cause)}`, cause })
    const lockWait = options.lockWait ?? defaultLockWait
    /** `attempt` on this thread, a lock waited out between attempts (see `internal/Busy.ts`). */
    const attempt = <A>(what: string, f: () => A) =>
      patiently(f, { lockWait, where, what, fail: fail(what) })
    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true })
          return new DatabaseSync(options.path, { timeout: 0 })
        },
        catch: fail("opening")
      }),
      (db) => Effect.sync(() => db.close())
    )
    yield* attempt("opening", () => {
      db.exec("PRAGMA journal_mode = WAL")
      db.exec("PRAGMA synchronous = FULL")
    })
    const refused = yield* attempt("migrating", () => migrate(db, naming, where))
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
    // The statement that sets each child table's cascade tombstones, prepared once.
    const cascading = new Map(
      cascadeChildren.map((child) => [child, db.prepare(cascadeSql("sqlite", naming, child))])
    )
    const putMeta = (key: string, value: string) =>
      db
        .prepare(
          `INSERT INTO ${meta} (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`
        )
        .run(key, value)

    const apply: Shape["apply"] = (rows: ReadonlyArray<Row>, last) =>
      attempt("applying a batch", () =>
        transaction(db, () => {
          for (const row of rows)
            upsert(row.table).run(...(rowParams("sqlite", row) as Array<SQLInputValue>))
          for (const [child, statement] of cascading) {
            const params = cascadeParams(child, rows)
            if (params !== undefined) statement.run(...params)
          }
          if (last !== undefined) {
            putMeta(metaKeys.lastEventId, last.id)
            putMeta(metaKeys.lastEventAt, last.at)
            putMeta(metaKeys.lastAppliedAt, new Date().toISOString())
          }
        })
      )

    const rows: Shape["rows"] = (table) =>
      attempt(`reading ${table}`, () =>
        (
          db.prepare(selectRowsSql("sqlite", naming, table)).all() as unknown as Array<SelectedRow>
        ).map((r) => fromSelected(table, r))
      )

    const counts: Shape["counts"] = attempt("counting rows", () => {
      const out: Record<string, { live: number; deleted: number }> = {}
      for (const name of tableNames) {
        const r = db.prepare(countSql(naming, name)).get() as { live: number; deleted: number }
        out[name] = { live: Number(r.live), deleted: Number(r.deleted) }
      }
      return out as Counts
    })

    const metaValue: Shape["meta"] = (key) =>
      attempt(
        "reading its bookkeeping",
        () =>
          (
            db.prepare(`SELECT value FROM ${meta} WHERE key = ?`).get(key) as
              | { value: string }
              | undefined
          )?.value
      )

    const setMeta: Shape["setMeta"] = (key, value) =>
      attempt("writing its bookkeeping", () => void putMeta(key, value))

    return { where, apply, rows, counts, meta: metaValue, setMeta } satisfies Shape
  })
