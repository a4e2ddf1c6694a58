/**
 * The SQLite state store (`node:sqlite`, the default: zero setup, one machine).
 *
 * `node:sqlite` is synchronous and runs on the main thread, so the connection's busy
 * timeout is zero: a lock held by another process fails an attempt at once (SQLITE_BUSY)
 * and `Patience` waits between attempts with `Effect.sleep`, while health checks,
 * metrics and the other lanes go on. Nothing else of the store waits: in WAL mode
 * with `synchronous = NORMAL` a commit appends to the log without an fsync, and the
 * statements touch a row or a few.
 *
 * One connection, one statement or transaction at a time (a semaphore): a fiber that
 * yields inside a transaction cannot let another fiber's statement into it.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import { type Service, StoreError } from "./Model.ts"
import { command, type Patience, patiently, withPatience } from "./Patience.ts"
import { type Db, makeService, migrate, type Query, type Row } from "./Sql.ts"

/** How a SQLite store is named in errors: by its file. */
export const storeName = (path: string): string =>
  path === ":memory:"
    ? "SQLite state store in memory"
    : `SQLite state store at ${Path.resolve(path)}`

const open = (path: string, store: string): Effect.Effect<DatabaseSync, StoreError> =>
  Effect.try({
    try: () => {
      if (path !== ":memory:") Fs.mkdirSync(Path.dirname(path), { recursive: true })
      const db = new DatabaseSync(path, { timeout: 0 })
      try {
        db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
      } catch (e) {
        db.close()
        throw e
      }
      return db
    },
    catch: (cause) => new StoreError({ store, operation: "open the database", cause })
  })

const sqliteDb = (path: string, patience: Patience): Effect.Effect<Db, StoreError, Scope.Scope> =>
  Effect.gen(function* () {
    const store = storeName(path)
    const sqlite = yield* Effect.acquireRelease(patiently(patience)(open(path, store)), (db) =>
      Effect.sync(() => db.close())
    )
    const statements = new Map<string, ReturnType<DatabaseSync["prepare"]>>()
    const run = (sql: string, params: ReadonlyArray<unknown> = []) =>
      Effect.try({
        try: () => {
          let statement = statements.get(sql)
          if (statement === undefined) {
            statement = sqlite.prepare(sql)
            statements.set(sql, statement)
          }
          return statement.all(...(params as Array<any>)) as ReadonlyArray<Row>
        },
        catch: (cause) =>
          new StoreError({ store, operation: sql.trim().split(/\s+/).slice(0, 3).join(" "), cause })
      })
    const exec = (sql: string) =>
      Effect.try({
        try: () => sqlite.exec(sql),
        catch: (cause) => new StoreError({ store, operation: sql.toLowerCase(), cause })
      })
    const rollback = Effect.sync(() => {
      try {
        if (sqlite.isTransaction) sqlite.exec("ROLLBACK")
      } catch {
        // Nothing to undo: SQLite rolled back on its own (a full disk, say).
      }
    })
    const one = Semaphore.makeUnsafe(1)
    const query: Query = (sql, params) => one.withPermit(run(sql, params))
    return {
      dialect: "sqlite",
      query,
      transaction: <A, E>(body: (query: Query) => Effect.Effect<A, E>) =>
        one.withPermit(
          Effect.uninterruptibleMask((restore) =>
            Effect.gen(function* () {
              yield* exec("BEGIN IMMEDIATE")
              const exit = yield* Effect.exit(restore(body(run)))
              if (Exit.isSuccess(exit)) {
                const committed = yield* Effect.exit(exec("COMMIT"))
                if (Exit.isSuccess(committed)) return exit.value
                yield* rollback
                return yield* committed
              }
              yield* rollback
              return yield* exit
            })
          )
        ) as Effect.Effect<A, E | StoreError>
    } satisfies Db
  })

/**
 * The SQLite store at `path` (`:memory:` for tests). `patience` says how long opening
 * it waits out a lock (and the operations, when `retry` is given: see `Patience`).
 */
export const sqlite = (
  path: string,
  options: { readonly open?: Patience; readonly retry?: Patience } = {}
): Effect.Effect<Service, StoreError, Scope.Scope> =>
  Effect.gen(function* () {
    const openPatience = options.open ?? command
    const db = yield* sqliteDb(path, openPatience)
    yield* patiently(openPatience)(migrate(db))
    return withPatience(makeService(db, `sqlite:${path}`), options.retry ?? command)
  })
