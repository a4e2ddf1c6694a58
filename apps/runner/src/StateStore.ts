/**
 * Where the runner keeps what must survive it: a checkpoint per sink, dead letters,
 * and the lease that lets only one runner consume at a time.
 *
 * SQLite (`node:sqlite`, the default: zero setup, one machine) or Postgres
 * (`@effect/sql-pg`, when runners on several machines share the work). Both run the
 * same versioned migrations and the same statements (`?` placeholders are numbered
 * for Postgres).
 *
 * The lease is one row: holder, expiry, and a fencing token that grows by one each
 * time the lease changes hands. Every checkpoint commit and dead letter carries the
 * writer's token and is refused when the row holds another: a runner that paused
 * past its lease (GC, a frozen VM) and woke up cannot move a checkpoint backwards.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { SqlClient } from "effect/sql"

// ---------------------------------------------------------------------------
// Model

export interface Checkpoint {
  readonly sink: string
  /**
   * The id of the last event done with (delivered, dead-lettered or filtered out);
   * before the first, the ISO-8601 time the sink starts from (see `pipeline/Start.ts`).
   */
  readonly cursor: string
  /** When that event was created (ISO-8601), for lag in time. */
  readonly eventCreatedAt: string | null
  /** When the checkpoint was written (ms since the epoch). */
  readonly updatedAt: number
}

export interface NewDeadLetter {
  readonly eventId: string
  readonly eventType: string
  /** The event as WorkOS sent it, JSON. */
  readonly event: string
  readonly error: string
  readonly attempts: number
  readonly firstFailure: number
  readonly lastFailure: number
}

export interface DeadLetter extends NewDeadLetter {
  readonly id: number
  readonly sink: string
}

/** A possible gap the source met (see core's `EventStream.Gap`), as the store keeps it for `status`. */
export interface RecordedGap {
  readonly detectedAt: number
  /** Events created after `from` and before `to` (ms; undefined: up to the first event read) may be lost. */
  readonly from: number
  readonly to: number | undefined
  readonly cursor: string
  readonly reason: string
  /** What the source did: went on from the oldest event WorkOS keeps, or stopped (`source.onGap`). */
  readonly action: "continued" | "stopped"
}

export interface Lease {
  readonly holder: string
  readonly token: number
  readonly expiresAt: number
}

/** Another runner holds the lease now: this one must stop writing. */
export class LeaseLost extends Data.TaggedError("LeaseLost")<{
  readonly holder: string
  readonly token: number
}> {
  override get message(): string {
    return `the lease (token ${this.token}) was taken over by another runner; this runner stops`
  }
}

export class StoreError extends Data.TaggedError("StoreError")<{
  readonly operation: string
  readonly cause: unknown
}> {
  override get message(): string {
    const cause = this.cause as Error | undefined
    const outer = cause?.message ?? String(cause)
    // Drivers wrap the system's reason ("PgConnection: Failed to connect" around ECONNREFUSED).
    let root = cause
    for (let i = 0; i < 5 && root?.cause instanceof Error; i++) root = root.cause
    const inner = root?.message
    return `state store: ${this.operation} failed: ${outer}${inner === undefined || inner === outer ? "" : ` (${inner})`}`
  }
}

export interface Service {
  /** `sqlite:<path>` or `postgres`, for `status`. */
  readonly description: string
  readonly checkpoints: () => Effect.Effect<ReadonlyArray<Checkpoint>, StoreError>
  readonly checkpoint: (sink: string) => Effect.Effect<Checkpoint | undefined, StoreError>
  /** Moves a sink's checkpoint; refused unless `token` is the lease's current token (null: no fencing). */
  readonly commit: (
    sink: string,
    cursor: string,
    eventCreatedAt: string | null,
    token: number | null
  ) => Effect.Effect<void, StoreError | LeaseLost>
  readonly addDeadLetters: (
    sink: string,
    letters: ReadonlyArray<NewDeadLetter>,
    token: number | null
  ) => Effect.Effect<void, StoreError | LeaseLost>
  readonly deadLetters: (filter: {
    readonly sink?: string | undefined
    readonly ids?: ReadonlyArray<number> | undefined
    readonly limit?: number | undefined
  }) => Effect.Effect<ReadonlyArray<DeadLetter>, StoreError>
  readonly deadLetterCounts: () => Effect.Effect<Readonly<Record<string, number>>, StoreError>
  readonly dropDeadLetters: (ids: ReadonlyArray<number>) => Effect.Effect<number, StoreError>
  readonly updateDeadLetter: (
    id: number,
    error: string,
    attempts: number,
    lastFailure: number
  ) => Effect.Effect<void, StoreError>
  /** Takes the lease when free or expired (or renews it when `holder` has it); the lease when held. */
  readonly acquireLease: (
    holder: string,
    ttl: number
  ) => Effect.Effect<Lease | undefined, StoreError>
  /** Extends a held lease; false when it was lost. */
  readonly renewLease: (
    holder: string,
    token: number,
    ttl: number
  ) => Effect.Effect<boolean, StoreError>
  readonly releaseLease: (holder: string, token: number) => Effect.Effect<void, StoreError>
  readonly lease: () => Effect.Effect<Lease | undefined, StoreError>
  readonly recordGap: (gap: RecordedGap) => Effect.Effect<void, StoreError>
  /** How many gaps were ever recorded, and the newest `limit` of them, newest first. */
  readonly gaps: (
    limit: number
  ) => Effect.Effect<
    { readonly total: number; readonly recent: ReadonlyArray<RecordedGap> },
    StoreError
  >
}

export class StateStore extends Context.Service<StateStore, Service>()(
  "@workos-relay/runner/StateStore"
) {}

// ---------------------------------------------------------------------------
// Migrations: append only; each runs once, in order, in a transaction.

export const migrations: ReadonlyArray<{
  readonly version: number
  readonly statements: ReadonlyArray<string>
}> = [
  {
    version: 1,
    statements: [
      `CREATE TABLE relay_checkpoints (
         sink TEXT PRIMARY KEY,
         cursor TEXT NOT NULL,
         event_created_at TEXT,
         updated_at BIGINT NOT NULL
       )`,
      `CREATE TABLE relay_dead_letters (
         id __SERIAL__,
         sink TEXT NOT NULL,
         event_id TEXT NOT NULL,
         event_type TEXT NOT NULL,
         event TEXT NOT NULL,
         error TEXT NOT NULL,
         attempts INTEGER NOT NULL,
         first_failure BIGINT NOT NULL,
         last_failure BIGINT NOT NULL
       )`,
      `CREATE INDEX relay_dead_letters_sink ON relay_dead_letters (sink, id)`,
      `CREATE TABLE relay_lease (
         name TEXT PRIMARY KEY,
         holder TEXT NOT NULL,
         token BIGINT NOT NULL,
         expires_at BIGINT NOT NULL
       )`
    ]
  },
  {
    version: 2,
    statements: [
      `CREATE TABLE relay_gaps (
         id __SERIAL__,
         detected_at BIGINT NOT NULL,
         gap_from BIGINT NOT NULL,
         gap_to BIGINT,
         cursor TEXT NOT NULL,
         reason TEXT NOT NULL,
         action TEXT NOT NULL
       )`
    ]
  }
]

// ---------------------------------------------------------------------------
// One implementation over a tiny SQL interface

type Row = Record<string, unknown>

interface Db {
  readonly dialect: "sqlite" | "postgres"
  readonly query: (
    sql: string,
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<Row>, StoreError>
  /** Runs `body` in one transaction that takes the write lock at once. */
  readonly transaction: <A, E>(body: Effect.Effect<A, E>) => Effect.Effect<A, E | StoreError>
}

const LEASE = "runner"

const migrate = (db: Db) =>
  db.transaction(
    Effect.gen(function* () {
      // Two runners starting together on one Postgres: one migrates, the other waits for it.
      if (db.dialect === "postgres") yield* db.query("SELECT pg_advisory_xact_lock(727001)")
      yield* db.query(
        "CREATE TABLE IF NOT EXISTS relay_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
      )
      const rows = yield* db.query("SELECT version FROM relay_migrations")
      const applied = new Set(rows.map((r) => Number(r.version)))
      for (const migration of migrations) {
        if (applied.has(migration.version)) continue
        for (const statement of migration.statements) {
          yield* db.query(
            statement.replace(
              "__SERIAL__",
              db.dialect === "sqlite"
                ? "INTEGER PRIMARY KEY AUTOINCREMENT"
                : "BIGSERIAL PRIMARY KEY"
            )
          )
        }
        yield* db.query("INSERT INTO relay_migrations (version, applied_at) VALUES (?, ?)", [
          migration.version,
          Date.now()
        ])
      }
    })
  )

const toDeadLetter = (r: Row): DeadLetter => ({
  id: Number(r.id),
  sink: String(r.sink),
  eventId: String(r.event_id),
  eventType: String(r.event_type),
  event: String(r.event),
  error: String(r.error),
  attempts: Number(r.attempts),
  firstFailure: Number(r.first_failure),
  lastFailure: Number(r.last_failure)
})

const toLease = (r: Row | undefined): Lease | undefined =>
  r === undefined
    ? undefined
    : { holder: String(r.holder), token: Number(r.token), expiresAt: Number(r.expires_at) }

const toGap = (r: Row): RecordedGap => ({
  detectedAt: Number(r.detected_at),
  from: Number(r.gap_from),
  to: r.gap_to === null ? undefined : Number(r.gap_to),
  cursor: String(r.cursor),
  reason: String(r.reason),
  action: r.action === "stopped" ? "stopped" : "continued"
})

const makeService = (db: Db, description: string): Effect.Effect<Service, StoreError> =>
  Effect.gen(function* () {
    yield* migrate(db)
    const lease = () =>
      db
        .query("SELECT holder, token, expires_at FROM relay_lease WHERE name = ?", [LEASE])
        .pipe(Effect.map((rows) => toLease(rows[0])))
    // Inside a write transaction: the row is locked (SQLite: the database; Postgres: FOR UPDATE).
    const fence = (token: number | null) =>
      token === null
        ? Effect.void
        : db
            .query(
              `SELECT holder, token, expires_at FROM relay_lease WHERE name = ?${db.dialect === "postgres" ? " FOR SHARE" : ""}`,
              [LEASE]
            )
            .pipe(
              Effect.flatMap((rows) => {
                const current = toLease(rows[0])
                return current !== undefined && current.token === token
                  ? Effect.void
                  : Effect.fail(new LeaseLost({ holder: current?.holder ?? "(nobody)", token }))
              })
            )

    const service: Service = {
      description,
      checkpoints: () =>
        db
          .query(
            "SELECT sink, cursor, event_created_at, updated_at FROM relay_checkpoints ORDER BY sink"
          )
          .pipe(
            Effect.map((rows) =>
              rows.map((r) => ({
                sink: String(r.sink),
                cursor: String(r.cursor),
                eventCreatedAt: r.event_created_at === null ? null : String(r.event_created_at),
                updatedAt: Number(r.updated_at)
              }))
            )
          ),
      checkpoint: (sink) =>
        service.checkpoints().pipe(Effect.map((all) => all.find((c) => c.sink === sink))),
      commit: (sink, cursor, eventCreatedAt, token) =>
        db.transaction(
          Effect.gen(function* () {
            yield* fence(token)
            yield* db.query(
              `INSERT INTO relay_checkpoints (sink, cursor, event_created_at, updated_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (sink) DO UPDATE SET cursor = excluded.cursor,
                 event_created_at = excluded.event_created_at, updated_at = excluded.updated_at`,
              [sink, cursor, eventCreatedAt, Date.now()]
            )
          })
        ),
      addDeadLetters: (sink, letters, token) =>
        letters.length === 0
          ? Effect.void
          : db.transaction(
              Effect.gen(function* () {
                yield* fence(token)
                for (const l of letters) {
                  yield* db.query(
                    `INSERT INTO relay_dead_letters (sink, event_id, event_type, event, error, attempts, first_failure, last_failure)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
                    [
                      sink,
                      l.eventId,
                      l.eventType,
                      l.event,
                      l.error,
                      l.attempts,
                      l.firstFailure,
                      l.lastFailure
                    ]
                  )
                }
              })
            ),
      deadLetters: ({ sink, ids, limit }) => {
        const where: Array<string> = []
        const params: Array<unknown> = []
        if (sink !== undefined) {
          where.push("sink = ?")
          params.push(sink)
        }
        if (ids !== undefined) {
          if (ids.length === 0) return Effect.succeed([])
          where.push(`id IN (${ids.map(() => "?").join(", ")})`)
          params.push(...ids)
        }
        return db
          .query(
            `SELECT * FROM relay_dead_letters${where.length === 0 ? "" : ` WHERE ${where.join(" AND ")}`} ORDER BY id${limit === undefined ? "" : ` LIMIT ${Math.floor(limit)}`}`,
            params
          )
          .pipe(Effect.map((rows) => rows.map(toDeadLetter)))
      },
      deadLetterCounts: () =>
        db
          .query("SELECT sink, COUNT(*) AS n FROM relay_dead_letters GROUP BY sink")
          .pipe(
            Effect.map((rows) => Object.fromEntries(rows.map((r) => [String(r.sink), Number(r.n)])))
          ),
      dropDeadLetters: (ids) =>
        ids.length === 0
          ? Effect.succeed(0)
          : db
              .query(
                `DELETE FROM relay_dead_letters WHERE id IN (${ids.map(() => "?").join(", ")}) RETURNING id`,
                ids
              )
              .pipe(Effect.map((rows) => rows.length)),
      updateDeadLetter: (id, error, attempts, lastFailure) =>
        db
          .query(
            "UPDATE relay_dead_letters SET error = ?, attempts = ?, last_failure = ? WHERE id = ?",
            [error, attempts, lastFailure, id]
          )
          .pipe(Effect.asVoid),
      acquireLease: (holder, ttl) =>
        db.transaction(
          Effect.gen(function* () {
            const now = Date.now()
            const rows = yield* db.query(
              `SELECT holder, token, expires_at FROM relay_lease WHERE name = ?${db.dialect === "postgres" ? " FOR UPDATE" : ""}`,
              [LEASE]
            )
            const current = toLease(rows[0])
            if (current === undefined) {
              yield* db.query(
                "INSERT INTO relay_lease (name, holder, token, expires_at) VALUES (?, ?, 1, ?)",
                [LEASE, holder, now + ttl]
              )
              return { holder, token: 1, expiresAt: now + ttl }
            }
            if (current.holder !== holder && current.expiresAt > now) return undefined
            // A new holder (or the same one after a restart) gets a new token: it fences the old.
            const token = current.token + 1
            yield* db.query(
              "UPDATE relay_lease SET holder = ?, token = ?, expires_at = ? WHERE name = ?",
              [holder, token, now + ttl, LEASE]
            )
            return { holder, token, expiresAt: now + ttl }
          })
        ),
      renewLease: (holder, token, ttl) =>
        db
          .query(
            "UPDATE relay_lease SET expires_at = ? WHERE name = ? AND holder = ? AND token = ? RETURNING token",
            [Date.now() + ttl, LEASE, holder, token]
          )
          .pipe(Effect.map((rows) => rows.length === 1)),
      releaseLease: (holder, token) =>
        db
          .query(
            "UPDATE relay_lease SET expires_at = 0 WHERE name = ? AND holder = ? AND token = ?",
            [LEASE, holder, token]
          )
          .pipe(Effect.asVoid),
      lease,
      recordGap: (gap) =>
        db
          .query(
            "INSERT INTO relay_gaps (detected_at, gap_from, gap_to, cursor, reason, action) VALUES (?, ?, ?, ?, ?, ?)",
            [gap.detectedAt, gap.from, gap.to ?? null, gap.cursor, gap.reason, gap.action]
          )
          .pipe(Effect.asVoid),
      gaps: (limit) =>
        Effect.all({
          total: db
            .query("SELECT COUNT(*) AS n FROM relay_gaps")
            .pipe(Effect.map((rows) => Number(rows[0]?.n ?? 0))),
          recent: db
            .query(`SELECT * FROM relay_gaps ORDER BY id DESC LIMIT ${Math.floor(limit)}`)
            .pipe(Effect.map((rows) => rows.map(toGap)))
        })
    }
    return service
  })

// ---------------------------------------------------------------------------
// SQLite

const sqliteDb = (path: string): Effect.Effect<Db, StoreError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        if (path !== ":memory:") Fs.mkdirSync(Path.dirname(path), { recursive: true })
        // The busy timeout first: switching to WAL takes a lock too, and another
        // process (a standby, `status`) may be opening the same file right now.
        const db = new DatabaseSync(path, { timeout: 5000 })
        db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        return db
      },
      catch: (cause) => new StoreError({ operation: `open ${path}`, cause })
    }),
    (db) => Effect.sync(() => db.close())
  ).pipe(
    Effect.map((sqlite): Db => {
      const statements = new Map<string, ReturnType<DatabaseSync["prepare"]>>()
      const query = (sql: string, params: ReadonlyArray<unknown> = []) =>
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
            new StoreError({ operation: sql.trim().split(/\s+/).slice(0, 3).join(" "), cause })
        })
      let depth = 0
      return {
        dialect: "sqlite",
        query,
        // node:sqlite is synchronous: nothing else of this process runs inside a transaction
        // unless the body yields to another fiber, which these bodies only do via `query`.
        transaction: <A, E>(body: Effect.Effect<A, E>) =>
          depth > 0
            ? body
            : Effect.acquireUseRelease(
                Effect.try({
                  try: () => {
                    sqlite.exec("BEGIN IMMEDIATE")
                    depth++
                  },
                  catch: (cause) => new StoreError({ operation: "begin", cause })
                }),
                () => body,
                (_, exit) =>
                  Effect.sync(() => {
                    depth--
                    sqlite.exec(exit._tag === "Success" ? "COMMIT" : "ROLLBACK")
                  })
              )
      }
    })
  )

/** The SQLite store at `path` (`:memory:` for tests). */
export const sqlite = (path: string): Effect.Effect<Service, StoreError, Scope.Scope> =>
  sqliteDb(path).pipe(Effect.flatMap((db) => makeService(db, `sqlite:${path}`)))

// ---------------------------------------------------------------------------
// Postgres

const numbered = (sql: string): string => {
  let n = 0
  return sql.replace(/\?/g, () => `$${++n}`)
}

/** host:port/database of a Postgres URL, without its credentials, for messages. */
const serverOf = (url: Redacted.Redacted<string>): string => {
  try {
    const parsed = new URL(Redacted.value(url))
    return `${parsed.hostname}:${parsed.port || "5432"}${parsed.pathname}`
  } catch {
    return "the configured URL"
  }
}

/** The Postgres store at `url`. */
export const postgres = (
  url: Redacted.Redacted<string>
): Effect.Effect<Service, StoreError, Scope.Scope> =>
  Effect.gen(function* () {
    // Loaded only when used: most runners keep their state in SQLite.
    const { PgClient } = yield* Effect.promise(() => import("@effect/sql-pg"))
    const context = yield* Layer.build(PgClient.layer({ url, maxConnections: 4 })).pipe(
      Effect.mapError((cause) => new StoreError({ operation: "connect to Postgres", cause }))
    )
    const sql = Context.get(context, SqlClient.SqlClient)
    // The pool connects lazily: reach the server now, so that a wrong URL is named as such.
    yield* sql
      .unsafe("SELECT 1")
      .pipe(
        Effect.mapError(
          (cause) => new StoreError({ operation: `connect to Postgres at ${serverOf(url)}`, cause })
        )
      )
    const db: Db = {
      dialect: "postgres",
      query: (text, params = []) =>
        sql
          .unsafe<Row>(numbered(text), params as Array<any>)
          .pipe(
            Effect.mapError(
              (cause) =>
                new StoreError({ operation: text.trim().split(/\s+/).slice(0, 3).join(" "), cause })
            )
          ),
      transaction: (body) =>
        sql
          .withTransaction(body)
          .pipe(
            Effect.mapError((e: any) =>
              e?._tag === "SqlError" ? new StoreError({ operation: "transaction", cause: e }) : e
            )
          ) as any
    }
    return yield* makeService(db, "postgres")
  })

/** The store a config's `state` names. */
export const layer = (
  state:
    | { readonly type: "sqlite"; readonly path: string }
    | { readonly type: "postgres"; readonly url: Redacted.Redacted<string> }
): Layer.Layer<StateStore, StoreError> =>
  Layer.effect(StateStore, state.type === "sqlite" ? sqlite(state.path) : postgres(state.url))
