/** The Postgres state store (`@effect/sql-pg`): for runners on several machines sharing the work. */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { SqlClient } from "effect/sql"
import { type Service, StoreError } from "./Model.ts"
import { command, type Patience, patiently, withPatience } from "./Patience.ts"
import { type Db, makeService, migrate, type Query, type Row } from "./Sql.ts"

const numbered = (sql: string): string => {
  let n = 0
  return sql.replace(/\?/g, () => `$${++n}`)
}

/** host:port/database of a Postgres URL, without its credentials, for messages. */
export const serverOf = (url: Redacted.Redacted<string>): string => {
  try {
    const parsed = new URL(Redacted.value(url))
    return `${parsed.hostname}:${parsed.port || "5432"}${parsed.pathname}`
  } catch {
    return "the configured URL"
  }
}

/** The Postgres store at `url` (`options` as for `sqlite`). */
export const postgres = (
  url: Redacted.Redacted<string>,
  options: { readonly open?: Patience; readonly retry?: Patience } = {}
): Effect.Effect<Service, StoreError, Scope.Scope> =>
  Effect.gen(function* () {
    const store = `Postgres state store at ${serverOf(url)}`
    // Loaded only when used: most runners keep their state in SQLite.
    const { PgClient } = yield* Effect.promise(() => import("@effect/sql-pg"))
    const context = yield* Layer.build(PgClient.layer({ url, maxConnections: 4 })).pipe(
      Effect.mapError((cause) => new StoreError({ store, operation: "connect", cause }))
    )
    const sql = Context.get(context, SqlClient.SqlClient)
    const openPatience = options.open ?? command
    // The pool connects lazily: reach the server now, so that a wrong URL is named as such.
    yield* patiently(openPatience)(
      sql
        .unsafe("SELECT 1")
        .pipe(Effect.mapError((cause) => new StoreError({ store, operation: "connect", cause })))
    )
    return yield* storeOn(sql, store, openPatience, options.retry ?? command)
  })

/**
 * The `Db` of a Postgres client (`store` names it in errors). With
 * `idleInTransactionTimeout` (ms), a transaction left idle that long is ended by the
 * server: a runner frozen mid-commit (SIGSTOP, a paused VM) then releases its row
 * locks, and the runner that claims its unit is not held up by them.
 */
export const dbOn = (
  sql: SqlClient.SqlClient,
  store: string,
  options: { readonly idleInTransactionTimeout?: number | undefined } = {}
): Db => {
  const idle = options.idleInTransactionTimeout
  const query: Query = (text, params = []) =>
    sql.unsafe<Row>(numbered(text), params as Array<any>).pipe(
      Effect.mapError(
        (cause) =>
          new StoreError({
            store,
            operation: text.trim().split(/\s+/).slice(0, 3).join(" "),
            cause
          })
      )
    )
  const db: Db = {
    dialect: "postgres",
    query,
    transaction: (body) =>
      sql
        .withTransaction(
          idle === undefined
            ? body(query)
            : query(
                `SET LOCAL idle_in_transaction_session_timeout = ${Math.max(1, Math.round(idle))}`
              ).pipe(Effect.andThen(body(query)))
        )
        .pipe(
          Effect.mapError((e: any) =>
            e?._tag === "SqlError"
              ? new StoreError({ store, operation: "transaction", cause: e })
              : e
          )
        ) as any
  }
  return db
}

/** The migrated store on a Postgres client, its commits fenced by `leaseName`. */
export const storeOn = (
  sql: SqlClient.SqlClient,
  store: string,
  open: Patience,
  retry: Patience,
  leaseName?: string,
  idleInTransactionTimeout?: number
): Effect.Effect<Service, StoreError> =>
  Effect.gen(function* () {
    const db = dbOn(sql, store, { idleInTransactionTimeout })
    yield* patiently(open)(migrate(db))
    return withPatience(makeService(db, "postgres", leaseName), retry)
  })
