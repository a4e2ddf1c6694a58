/**
 * The Postgres store, for several machines or a team's existing database
 * (`@effect/sql-pg`). A batch is one transaction that first locks the chain's row,
 * so concurrent writers take turns and the chain never forks.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { SqlClient } from "effect/sql/SqlClient"
import * as Chain from "./Chain.ts"
import {
  chainRowMissing,
  chunks,
  columns,
  dedupe,
  fromRow,
  fromRowToVerify,
  type Row,
  selectSql,
  toRow
} from "./internal/Rows.ts"
import type { AuditRecord, StoredRecord } from "./Record.ts"
import {
  defaultLimit,
  openedReadOnly,
  type PruneOptions,
  patternToLike,
  SchemaTooNew,
  type Shape,
  Store,
  StoreError,
  schemaTooOld,
  schemaVersion,
  storeFailure
} from "./Store.ts"

export interface Options {
  /** `postgres://user:password@host:port/database` */
  readonly url: Redacted.Redacted<string>
  /**
   * For `audit verify` and `audit query`: create, migrate and write nothing (a database
   * of another schema version is refused). Default false.
   */
  readonly readOnly?: boolean
}

/** Versioned migrations: migration N takes a store from version N-1 to N. */
const migrations: ReadonlyArray<ReadonlyArray<string>> = [
  [
    `CREATE TABLE audit_chain (
       id integer PRIMARY KEY CHECK (id = 1),
       anchor_seq bigint NOT NULL, anchor_hash text NOT NULL,
       head_seq bigint NOT NULL, head_hash text NOT NULL, head_count bigint NOT NULL)`,
    `INSERT INTO audit_chain VALUES (1, 0, '${Chain.genesis}', 0, '${Chain.genesis}', 0)`,
    `CREATE TABLE audit_records (
       seq bigint PRIMARY KEY,
       id text NOT NULL UNIQUE,
       type text NOT NULL,
       created_at text NOT NULL,
       organization_id text,
       actor_id text,
       actor_name text,
       actor text,
       targets text NOT NULL,
       ip_address text,
       user_agent text,
       event text NOT NULL,
       prev_hash text NOT NULL,
       hash text NOT NULL)`,
    // text_pattern_ops lets `type LIKE 'dsync.%'` use the index whatever the collation.
    "CREATE INDEX audit_records_created ON audit_records (created_at, seq)",
    "CREATE INDEX audit_records_type ON audit_records (type text_pattern_ops, created_at)",
    "CREATE INDEX audit_records_org ON audit_records (organization_id, created_at)",
    "CREATE INDEX audit_records_actor_id ON audit_records (actor_id, created_at)",
    "CREATE INDEX audit_records_actor_name ON audit_records (actor_name, created_at)"
  ],
  // 2: where an event breaks the spec; older records have none (NULL), and their
  // hashes never covered it. The partial index serves `audit query --mismatched`.
  [
    "ALTER TABLE audit_records ADD COLUMN schema_mismatch text",
    "CREATE INDEX audit_records_mismatch ON audit_records (created_at, seq) WHERE schema_mismatch IS NOT NULL"
  ]
]

/** Where the database is, for messages: host, port and name, never the password. */
export const describe = (url: Redacted.Redacted<string>): string => {
  try {
    const u = new URL(Redacted.value(url))
    return `postgres://${u.host}${u.pathname}`
  } catch {
    return "postgres (unparseable URL)"
  }
}

interface ChainRow {
  anchor_seq: string | number
  anchor_hash: string
  head_seq: string | number
  head_hash: string
  head_count: string | number
}

const pageSize = 5_000

/** The store over the `SqlClient` in context (any Postgres client layer). */
export const make = (
  where: string,
  options: { readonly readOnly?: boolean } = {}
): Effect.Effect<Shape, StoreError | SchemaTooNew, SqlClient> =>
  Effect.gen(function* () {
    const readOnly = options.readOnly === true
    const sql = yield* SqlClient
    const fail =
      (what: string) =>
      (cause: unknown): StoreError =>
        storeFailure({ store: "Postgres", location: where, operation: what, cause })
    const run = <A extends object>(text: string, params: ReadonlyArray<unknown> = []) =>
      sql.unsafe<A>(text, params)

    // Read-only: the schema version is checked, never migrated.
    const checkVersion = Effect.gen(function* () {
      const table = yield* run<{ name: string | null }>(
        "SELECT to_regclass('audit_meta')::text AS name"
      )
      if (table[0]?.name == null) {
        return storeFailure({
          store: "Postgres",
          location: where,
          operation: "opening",
          detail: "not an audit log (the database has no audit_meta table)"
        })
      }
      const rows = yield* run<{ value: string }>(
        "SELECT value FROM audit_meta WHERE key = 'schema_version'"
      )
      const found = rows[0] === undefined ? 0 : Number(rows[0].value)
      if (found > schemaVersion) return new SchemaTooNew({ where, found, supported: schemaVersion })
      return found < schemaVersion ? schemaTooOld(where, found) : undefined
    }).pipe(Effect.mapError(fail("opening")))

    // Migrations, under an advisory lock so that two runners starting together take turns.
    const migrate = sql
      .withTransaction(
        Effect.gen(function* () {
          yield* run("SELECT pg_advisory_xact_lock(7245031)")
          yield* run(
            "CREATE TABLE IF NOT EXISTS audit_meta (key text PRIMARY KEY, value text NOT NULL)"
          )
          const rows = yield* run<{ value: string }>(
            "SELECT value FROM audit_meta WHERE key = 'schema_version'"
          )
          const found = rows[0] === undefined ? 0 : Number(rows[0].value)
          if (found > schemaVersion)
            return new SchemaTooNew({ where, found, supported: schemaVersion })
          for (let v = found; v < schemaVersion; v++) {
            for (const statement of migrations[v]!) yield* run(statement)
          }
          yield* run(
            "INSERT INTO audit_meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [String(schemaVersion)]
          )
          return undefined
        })
      )
      .pipe(Effect.mapError(fail("migrating")))
    const refused = yield* readOnly ? checkVersion : migrate
    if (refused !== undefined) return yield* refused

    const chainRow = (lock: boolean) =>
      run<ChainRow>(`SELECT * FROM audit_chain WHERE id = 1${lock ? " FOR UPDATE" : ""}`).pipe(
        Effect.map((rows) => rows[0])
      )
    // For writing, locked: without its row the chain cannot go on, and retrying will not bring it back.
    const chainState = (what: string) =>
      Effect.flatMap(chainRow(true), (row) =>
        row === undefined
          ? Effect.fail(
              storeFailure({
                store: "Postgres",
                location: where,
                operation: what,
                detail: chainRowMissing,
                fatal: true
              })
            )
          : Effect.succeed(row)
      )
    const refuseWrite = Effect.fail(openedReadOnly("Postgres", where))
    const head = chainRow(false).pipe(
      Effect.map((row) =>
        row === undefined
          ? undefined
          : {
              anchor: { seq: Number(row.anchor_seq), hash: row.anchor_hash },
              head: {
                seq: Number(row.head_seq),
                hash: row.head_hash,
                count: Number(row.head_count)
              }
            }
      ),
      Effect.mapError(fail("reading the head"))
    )
    const keepStoreError =
      (what: string) =>
      (e: unknown): StoreError =>
        e instanceof StoreError ? e : fail(what)(e)

    const append = (records: ReadonlyArray<AuditRecord>) =>
      sql
        .withTransaction(
          Effect.gen(function* () {
            // Locking the chain first serializes writers: the id check below cannot race.
            const state = yield* chainState("appending a batch")
            const unique = dedupe(records)
            const known = new Set<string>()
            if (unique.length > 0) {
              const rows = yield* run<{ id: string }>(
                "SELECT id FROM audit_records WHERE id = ANY($1::text[])",
                [unique.map((r) => r.id)]
              )
              for (const row of rows) known.add(row.id)
            }
            const fresh = unique.filter((r) => !known.has(r.id))
            const linked = Chain.link({ seq: Number(state.head_seq), hash: state.head_hash }, fresh)
            for (const part of chunks(linked, 500)) {
              const params: Array<unknown> = []
              const values = part.map((record) => {
                const row = toRow(record)
                const slots = columns.map((c) => {
                  params.push(row[c])
                  return `$${params.length}`
                })
                return `(${slots.join(", ")})`
              })
              yield* run(
                `INSERT INTO audit_records (${columns.join(", ")}) VALUES ${values.join(", ")}`,
                params
              )
            }
            const last = linked.at(-1)
            if (last !== undefined) {
              yield* run(
                "UPDATE audit_chain SET head_seq = $1, head_hash = $2, head_count = head_count + $3 WHERE id = 1",
                [last.seq, last.hash, linked.length]
              )
            }
            return { inserted: linked.length, duplicates: records.length - linked.length }
          })
        )
        .pipe(Effect.mapError(keepStoreError("appending a batch")))

    const query: Shape["query"] = (q) => {
      const { sql: text, params } = selectSql(q, defaultLimit, patternToLike, (n) => `$${n}`)
      return run<Row>(text, params).pipe(
        Effect.map((rows) => rows.map(fromRow)),
        Effect.mapError(fail("querying"))
      )
    }

    // Keyset pages keep memory flat over millions of records.
    const ordered = (runPromise: <A, E>(effect: Effect.Effect<A, E>) => Promise<A>) =>
      async function* (): AsyncGenerator<StoredRecord> {
        let after = -1
        while (true) {
          const rows = await runPromise(
            run<Row>(
              `SELECT ${columns.join(", ")} FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT ${pageSize}`,
              [after]
            )
          )
          for (const row of rows) yield fromRowToVerify(row)
          if (rows.length < pageSize) return
          after = Number(rows.at(-1)!.seq)
        }
      }

    // One REPEATABLE READ transaction on one connection: the head and every page come
    // from the same snapshot, so a writer appending meanwhile cannot look like an insertion.
    const verify = sql
      .withTransaction(
        Effect.gen(function* () {
          yield* run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
          const state = yield* chainRow(false)
          if (state === undefined) return Chain.missing(chainRowMissing)
          // The transaction's connection is in this context: the pages must run in it.
          const inTransaction = yield* Effect.context<never>()
          const records = ordered(Effect.runPromiseWith(inTransaction))
          return yield* Effect.tryPromise({
            try: () =>
              Chain.walk({
                anchor: { seq: Number(state.anchor_seq), hash: state.anchor_hash },
                head: {
                  seq: Number(state.head_seq),
                  hash: state.head_hash,
                  count: Number(state.head_count)
                },
                records: records(),
                again: records
              }),
            catch: fail("verifying")
          })
        })
      )
      .pipe(Effect.mapError(keepStoreError("verifying")))

    const prune = (before: Date, options: PruneOptions = {}) =>
      sql
        .withTransaction(
          Effect.gen(function* () {
            const state = yield* chainState("pruning")
            const cutoff = before.toISOString()
            // The longest prefix of the chain whose records are all older than the cutoff.
            const firstKept = yield* run<{ seq: string | number }>(
              options.upTo === undefined
                ? "SELECT min(seq) AS seq FROM audit_records WHERE created_at >= $1"
                : "SELECT min(seq) AS seq FROM audit_records WHERE created_at >= $1 OR seq > $2",
              options.upTo === undefined ? [cutoff] : [cutoff, options.upTo]
            )
            const keptFrom = firstKept[0]?.seq ?? null
            const lastRows = yield* run<{ seq: string | number; hash: string }>(
              keptFrom === null
                ? "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1"
                : "SELECT seq, hash FROM audit_records WHERE seq < $1 ORDER BY seq DESC LIMIT 1",
              keptFrom === null ? [] : [keptFrom]
            )
            const last = lastRows[0]
            if (last === undefined) {
              return {
                deleted: 0,
                anchor: { seq: Number(state.anchor_seq), hash: state.anchor_hash }
              }
            }
            if (options.plan === true) {
              const n = yield* run<{ n: string | number }>(
                "SELECT count(*) AS n FROM audit_records WHERE seq <= $1",
                [last.seq]
              )
              return {
                deleted: Number(n[0]?.n ?? 0),
                anchor: { seq: Number(last.seq), hash: last.hash }
              }
            }
            const deleted = yield* run<{ n: string | number }>(
              "WITH d AS (DELETE FROM audit_records WHERE seq <= $1 RETURNING 1) SELECT count(*) AS n FROM d",
              [last.seq]
            )
            const n = Number(deleted[0]?.n ?? 0)
            yield* run(
              "UPDATE audit_chain SET anchor_seq = $1, anchor_hash = $2, head_count = head_count - $3 WHERE id = 1",
              [last.seq, last.hash, n]
            )
            return { deleted: n, anchor: { seq: Number(last.seq), hash: last.hash } }
          })
        )
        .pipe(Effect.mapError(keepStoreError("pruning")))

    return (
      readOnly
        ? { where, append: () => refuseWrite, query, verify, prune: () => refuseWrite, head }
        : { where, append, query, verify, prune, head }
    ) satisfies Shape
  })

/** The client and store for one database URL; the pool is closed with the scope. */
export const makeFromUrl = (
  options: Options
): Effect.Effect<Shape, StoreError | SchemaTooNew, Scope.Scope> =>
  Effect.gen(function* () {
    const where = describe(options.url)
    // Built in the caller's scope: the pool lives as long as the store.
    const client = yield* Layer.build(
      PgClient.layer({
        url: options.url,
        connectTimeout: "10 seconds",
        // Prepared statements planned while the table was small keep a generic plan (a
        // sequential scan) as it grows to millions of rows: plan each execution instead.
        startupParameters: { plan_cache_mode: "force_custom_plan" }
      })
    ).pipe(
      Effect.mapError((cause) =>
        storeFailure({ store: "Postgres", location: where, operation: "connecting", cause })
      )
    )
    return yield* make(where, { readOnly: options.readOnly === true }).pipe(
      Effect.provideContext(client)
    )
  })

/** The `Store` service over a Postgres database. */
export const layer = (options: Options): Layer.Layer<Store, StoreError | SchemaTooNew> =>
  Layer.effect(Store, makeFromUrl(options))
