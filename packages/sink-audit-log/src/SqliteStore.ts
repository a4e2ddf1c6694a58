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
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Chain from "./Chain.ts"
import {
  chainRowMissing,
  columns,
  describeCause,
  fromRow,
  fromRowToVerify,
  type Row,
  selectSql
} from "./internal/Rows.ts"
import {
  appender,
  BrokenStore,
  defaultBusyTimeoutMs,
  open,
  prepareBatch
} from "./internal/SqliteAppend.ts"
import { isLocked, migrate, prune as pruneChain } from "./internal/SqliteSchema.ts"
import { LockedStore, writer } from "./internal/SqliteWriter.ts"
import type { StoredRecord } from "./Record.ts"
import {
  defaultLimit,
  openedReadOnly,
  type PruneOptions,
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
  /**
   * How long a write waits for a lock another process holds before it fails as a
   * retryable error (default 10 s). Writes wait on the writer thread: the caller's
   * event loop keeps running meanwhile.
   */
  readonly busyTimeoutMs?: number
}

const fail = (where: string, what: string) => (cause: unknown) =>
  storeFailure({
    store: "SQLite",
    location: where,
    operation: what,
    cause,
    fatal: cause instanceof BrokenStore,
    ...(cause instanceof LockedStore || isLocked(cause)
      ? {
          detail: `another connection held the database's lock longer than the busy timeout (${describeCause(cause)}); retried`,
          locked: true
        }
      : {})
  })

/**
 * At start-up: repeats `effect` while another connection holds the lock, logging each
 * time: a held lock is a wait, never the end of the store (or of the runner starting it).
 */
const whileLocked = <A>(effect: Effect.Effect<A, StoreError>): Effect.Effect<A, StoreError> =>
  effect.pipe(
    Effect.tapError((e) =>
      e.locked === true ? Effect.logWarning(`${e.message}; trying again in 1 second`) : Effect.void
    ),
    Effect.retry({ while: (e) => e.locked === true, schedule: Schedule.spaced("1 second") })
  )

/**
 * Reads on this thread do not wait inside SQLite (a busy read fails at once): they are
 * tried again every 100 ms, for about the busy timeout, then fail as `locked`.
 */
const readRetried = <A>(effect: Effect.Effect<A, StoreError>): Effect.Effect<A, StoreError> =>
  Effect.retry(effect, {
    while: (e) => e.locked === true,
    schedule: Schedule.spaced("100 millis"),
    times: 100
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
    const inMemory = options.path === ":memory:"
    const busyTimeoutMs = options.busyTimeoutMs ?? defaultBusyTimeoutMs
    // A file written by the relay is opened, migrated, written and pruned on the writer
    // thread, where waiting for a lock cannot stall this thread's event loop.
    const thread =
      readOnly || inMemory
        ? undefined
        : yield* Effect.acquireRelease(
            Effect.try({
              try: () => {
                mkdirSync(dirname(options.path), { recursive: true })
                return writer(options.path, busyTimeoutMs)
              },
              catch: fail(where, "opening")
            }),
            (w) => Effect.promise(() => w.close())
          )
    if (thread !== undefined) {
      const found = yield* whileLocked(
        Effect.tryPromise({ try: () => thread.migrate(), catch: fail(where, "migrating") })
      )
      if (found !== undefined) {
        return yield* new SchemaTooNew({ where, found, supported: schemaVersion })
      }
    }
    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          // Read-only: no WAL switch either (it writes), and a read-only folder is fine.
          if (readOnly) return openReadOnly(options.path)
          if (inMemory) return open(options.path)
          // This thread only reads (the WAL lets readers be): a busy read fails at once
          // and is retried (`readRetried`) instead of waiting here.
          return new DatabaseSync(options.path, { timeout: 0 })
        },
        catch: fail(where, "opening")
      }),
      (db) => Effect.sync(() => db.close())
    )
    if (readOnly || inMemory) {
      const refused = yield* Effect.try({
        try: () => {
          if (readOnly) return checkVersion(db, where)
          const found = migrate(db)
          return found === undefined
            ? undefined
            : new SchemaTooNew({ where, found, supported: schemaVersion })
        },
        catch: fail(where, readOnly ? "opening" : "migrating")
      })
      if (refused !== undefined) return yield* refused
    }

    // Prepared when used, inside each operation's error handling (a dropped table fails there).
    const chainState = () =>
      db.prepare("SELECT * FROM audit_chain WHERE id = 1").get() as ChainRow | undefined

    // An in-memory database cannot be shared with a thread: it is written here.
    const append: Shape["append"] | undefined = readOnly
      ? undefined
      : thread === undefined
        ? appendInThread(db, where)
        : (records) =>
            Effect.tryPromise({
              try: () => thread.append(records),
              catch: fail(where, "appending a batch")
            })

    const query: Shape["query"] = (q) =>
      readRetried(
        Effect.try({
          try: () => {
            const { sql, params } = selectSql(q, defaultLimit, patternToLike, () => "?")
            return (db.prepare(sql).all(...params) as unknown as Array<Row>).map(fromRow)
          },
          catch: fail(where, "querying")
        })
      )

    function* ordered(): Generator<StoredRecord> {
      const stmt = db.prepare(`SELECT ${columns.join(", ")} FROM audit_records ORDER BY seq`)
      for (const row of stmt.iterate()) yield fromRowToVerify(row as unknown as Row)
    }

    // One read transaction: the head and the records come from the same snapshot,
    // so a writer appending meanwhile (the runner) cannot look like an insertion.
    const verify = readRetried(
      Effect.tryPromise({
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
    )

    const prune = (before: Date, options: PruneOptions = {}) =>
      thread === undefined
        ? Effect.try({
            try: () => pruneChain(db, before.toISOString(), options),
            catch: fail(where, "pruning")
          })
        : Effect.tryPromise({
            try: () => thread.prune(before.toISOString(), options),
            catch: fail(where, "pruning")
          })

    const head = readRetried(
      Effect.try({
        try: () => {
          const state = chainState()
          return state === undefined
            ? undefined
            : {
                anchor: { seq: state.anchor_seq, hash: state.anchor_hash },
                head: { seq: state.head_seq, hash: state.head_hash, count: state.head_count }
              }
        },
        catch: fail(where, "reading the head")
      })
    )

    if (append === undefined) {
      const refuseWrite = Effect.fail(openedReadOnly("SQLite", where))
      return { where, append: () => refuseWrite, query, verify, prune: () => refuseWrite, head }
    }
    return { where, append, query, verify, prune, head } satisfies Shape
  })

/** The `Store` service over a SQLite file. */
export const layer = (options: Options): Layer.Layer<Store, StoreError | SchemaTooNew> =>
  Layer.effect(Store, make(options))
