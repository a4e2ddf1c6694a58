/**
 * The SQLite store (the default): one file, `node:sqlite`, WAL, `synchronous=FULL`
 * so that a committed batch survives a power cut. A batch is one `BEGIN IMMEDIATE`
 * transaction: a crash at any point leaves either the whole batch or none of it.
 * Batches are written on a thread of their own (see `internal/SqliteWriter.ts`).
 */
import { existsSync, mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { pathToFileURL } from "node:url"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Chain from "./Chain.ts"
import {
  chainRowMissing,
  columns,
  fromRow,
  fromRowToVerify,
  type Row,
  selectSql
} from "./internal/Rows.ts"
import { appender, BrokenStore, open, prepareBatch, transaction } from "./internal/SqliteAppend.ts"
import { writer } from "./internal/SqliteWriter.ts"
import type { StoredRecord } from "./Record.ts"
import {
  defaultLimit,
  openedReadOnly,
  patternToLike,
  SchemaTooNew,
  type Shape,
  Store,
  type StoreError,
  schemaTooOld,
  schemaVersion,
  storeFailure
} from "./Store.ts"

/** The default path, relative to the working directory. */
export const defaultPath = "./.workos-relay/audit.db"

export interface Options {
  readonly path: string
  /**
   * For `audit verify` and `audit query`: open the file read-only, creating, migrating
   * and writing nothing (a store of another schema version is refused). Default false.
   */
  readonly readOnly?: boolean
}

/** Versioned migrations: migration N takes a store from version N-1 to N. */
const migrations: ReadonlyArray<string> = [
  `CREATE TABLE audit_chain (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     anchor_seq INTEGER NOT NULL, anchor_hash TEXT NOT NULL,
     head_seq INTEGER NOT NULL, head_hash TEXT NOT NULL, head_count INTEGER NOT NULL);
   INSERT INTO audit_chain VALUES (1, 0, '${Chain.genesis}', 0, '${Chain.genesis}', 0);
   CREATE TABLE audit_records (
     seq INTEGER PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     type TEXT NOT NULL,
     created_at TEXT NOT NULL,
     organization_id TEXT,
     actor_id TEXT,
     actor_name TEXT,
     actor TEXT,
     targets TEXT NOT NULL,
     ip_address TEXT,
     user_agent TEXT,
     event TEXT NOT NULL,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL);
   CREATE INDEX audit_records_created ON audit_records (created_at, seq);
   CREATE INDEX audit_records_type ON audit_records (type, created_at);
   CREATE INDEX audit_records_org ON audit_records (organization_id, created_at);
   CREATE INDEX audit_records_actor_id ON audit_records (actor_id, created_at);
   CREATE INDEX audit_records_actor_name ON audit_records (actor_name, created_at);`,
  // 2: where an event breaks the spec; older records have none (NULL), and their
  // hashes never covered it. The partial index serves `audit query --mismatched`.
  `ALTER TABLE audit_records ADD COLUMN schema_mismatch TEXT;
   CREATE INDEX audit_records_mismatch ON audit_records (created_at, seq)
     WHERE schema_mismatch IS NOT NULL;`
]

const fail = (where: string, what: string) => (cause: unknown) =>
  storeFailure({
    store: "SQLite",
    location: where,
    operation: what,
    cause,
    fatal: cause instanceof BrokenStore
  })

/** Brings the schema up to this package's version, or refuses a newer one. */
const migrate = (db: DatabaseSync, where: string): SchemaTooNew | undefined =>
  transaction(db, () => {
    db.exec("CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    const row = db.prepare("SELECT value FROM audit_meta WHERE key = 'schema_version'").get() as
      | { value: string }
      | undefined
    const found = row === undefined ? 0 : Number(row.value)
    if (found > schemaVersion) return new SchemaTooNew({ where, found, supported: schemaVersion })
    for (let v = found; v < schemaVersion; v++) db.exec(migrations[v]!)
    db.prepare(
      "INSERT INTO audit_meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    ).run(String(schemaVersion))
    return undefined
  })

/**
 * Opens read-only, writing nothing. A store closed cleanly has no `-wal` and `-shm`
 * files, and in a folder it may not write SQLite cannot make the `-shm` a WAL reader
 * needs (SQLITE_CANTOPEN, 14): then, with no `-wal` to read, the file alone is the
 * whole store, and it is opened as immutable.
 */
const openReadOnly = (path: string): DatabaseSync => {
  const db = new DatabaseSync(path, { readOnly: true, timeout: 10_000 })
  try {
    db.prepare("SELECT count(*) FROM sqlite_master").get()
    return db
  } catch (e) {
    db.close()
    if ((e as { errcode?: unknown }).errcode !== 14 || existsSync(`${path}-wal`)) throw e
    const url = pathToFileURL(path)
    url.searchParams.set("immutable", "1")
    return new DatabaseSync(url, { readOnly: true })
  }
}

/** The schema version of a store opened read-only: anything but this package's is refused, not migrated. */
const checkVersion = (db: DatabaseSync, where: string): SchemaTooNew | StoreError | undefined => {
  const meta = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_meta'")
    .get()
  if (meta === undefined) {
    return storeFailure({
      store: "SQLite",
      location: where,
      operation: "opening",
      detail: "not an audit log (the file has no audit_meta table)"
    })
  }
  const row = db.prepare("SELECT value FROM audit_meta WHERE key = 'schema_version'").get() as
    | { value: string }
    | undefined
  const found = row === undefined ? 0 : Number(row.value)
  if (found > schemaVersion) return new SchemaTooNew({ where, found, supported: schemaVersion })
  if (found < schemaVersion) return schemaTooOld(where, found)
  return undefined
}

/** Appends on this thread (`:memory:` stores). */
const appendInThread = (db: DatabaseSync, where: string): Shape["append"] => {
  const { append } = appender(db)
  return (records) =>
    Effect.try({
      try: () => append(prepareBatch(records)),
      catch: fail(where, "appending a batch")
    })
}

/**
 * Appends on a writer thread with its own connection, so that SQLite's work (hashing,
 * inserting, the fsync) overlaps the caller's: the runner fetches and decodes the next
 * batch meanwhile. The JSON the rows need (canonical JSON, which the hashes cover too)
 * is made here, a part of the batch at a time, and handed over as strings: posting the
 * records as objects would cost a structured clone here and its decoding there, on top
 * of that same JSON. The thread ends with the scope, once the batches in flight are
 * written.
 */
const appendOnWriterThread = (
  path: string,
  where: string
): Effect.Effect<Shape["append"], never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => writer(path)),
      (w) => Effect.promise(() => w.close())
    ),
    (w) => (records) =>
      Effect.tryPromise({
        try: () => w.append(records),
        catch: fail(where, "appending a batch")
      })
  )

interface ChainRow {
  anchor_seq: number
  anchor_hash: string
  head_seq: number
  head_hash: string
  head_count: number
}

/** Opens (creating when needed, unless `readOnly`) the store at `path`; closed with the scope. */
export const make = (
  options: Options
): Effect.Effect<Shape, StoreError | SchemaTooNew, Scope.Scope> =>
  Effect.gen(function* () {
    const where = options.path
    const readOnly = options.readOnly === true
    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          // Read-only: no WAL switch either (it writes), and a read-only folder is fine.
          if (readOnly) return openReadOnly(options.path)
          if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true })
          return open(options.path)
        },
        catch: fail(where, "opening")
      }),
      (db) => Effect.sync(() => db.close())
    )
    const refused = yield* Effect.try({
      try: () => (readOnly ? checkVersion(db, where) : migrate(db, where)),
      catch: fail(where, readOnly ? "opening" : "migrating")
    })
    if (refused !== undefined) return yield* refused

    // Prepared when used, inside each operation's error handling (a dropped table fails there).
    const chainState = () =>
      db.prepare("SELECT * FROM audit_chain WHERE id = 1").get() as ChainRow | undefined

    // An in-memory database cannot be shared with a thread: it is written here.
    const append = readOnly
      ? undefined
      : options.path === ":memory:"
        ? appendInThread(db, where)
        : yield* appendOnWriterThread(options.path, where)

    const query: Shape["query"] = (q) =>
      Effect.try({
        try: () => {
          const { sql, params } = selectSql(q, defaultLimit, patternToLike, () => "?")
          return (db.prepare(sql).all(...params) as unknown as Array<Row>).map(fromRow)
        },
        catch: fail(where, "querying")
      })

    function* ordered(): Generator<StoredRecord> {
      const stmt = db.prepare(`SELECT ${columns.join(", ")} FROM audit_records ORDER BY seq`)
      for (const row of stmt.iterate()) yield fromRowToVerify(row as unknown as Row)
    }

    // One read transaction: the head and the records come from the same snapshot,
    // so a writer appending meanwhile (the runner) cannot look like an insertion.
    const verify = Effect.tryPromise({
      try: async () => {
        db.exec("BEGIN")
        try {
          const state = chainState()
          if (state === undefined) return Chain.missing(chainRowMissing)
          return await Chain.walk({
            anchor: { seq: state.anchor_seq, hash: state.anchor_hash },
            head: { seq: state.head_seq, hash: state.head_hash, count: state.head_count },
            records: ordered(),
            again: ordered
          })
        } finally {
          db.exec("COMMIT")
        }
      },
      catch: fail(where, "verifying")
    })

    const prune = (before: Date) =>
      Effect.try({
        try: () =>
          transaction(db, () => {
            const cutoff = before.toISOString()
            // The longest prefix of the chain whose records are all older than the cutoff.
            let last: { seq: number; hash: string } | undefined
            let deleted = 0
            for (const row of db
              .prepare("SELECT seq, created_at, hash FROM audit_records ORDER BY seq")
              .iterate()) {
              const r = row as { seq: number; created_at: string; hash: string }
              if (r.created_at >= cutoff) break
              last = { seq: r.seq, hash: r.hash }
              deleted += 1
            }
            const state = chainState()
            if (state === undefined) throw new BrokenStore(chainRowMissing)
            if (last === undefined) {
              return { deleted: 0, anchor: { seq: state.anchor_seq, hash: state.anchor_hash } }
            }
            db.prepare("DELETE FROM audit_records WHERE seq <= ?").run(last.seq)
            db.prepare(
              "UPDATE audit_chain SET anchor_seq = ?, anchor_hash = ?, head_count = head_count - ? WHERE id = 1"
            ).run(last.seq, last.hash, deleted)
            return { deleted, anchor: last }
          }),
        catch: fail(where, "pruning")
      })

    if (append === undefined) {
      const refuseWrite = Effect.fail(openedReadOnly("SQLite", where))
      return { where, append: () => refuseWrite, query, verify, prune: () => refuseWrite }
    }
    return { where, append, query, verify, prune } satisfies Shape
  })

/** The `Store` service over a SQLite file. */
export const layer = (options: Options): Layer.Layer<Store, StoreError | SchemaTooNew> =>
  Layer.effect(Store, make(options))
