/**
 * The state store's one implementation, over a tiny SQL interface (`Db`) that SQLite
 * and Postgres each provide: the same versioned migrations and the same statements
 * (`?` placeholders are numbered for Postgres).
 *
 * The lease is one row: holder, expiry, and a fencing token that grows by one each
 * time the lease changes hands. Every checkpoint commit and dead letter carries the
 * writer's token and is refused when the row holds another: a runner that paused
 * past its lease (GC, a frozen VM) and woke up cannot move a checkpoint backwards.
 */
import * as Effect from "effect/Effect"
import {
  type DeadLetter,
  defaultSource,
  type Lease,
  LeaseLost,
  type RecordedGap,
  type Service,
  StoreError,
  type WebhookDelivery
} from "./Model.ts"

export type Row = Record<string, unknown>

export type Query = (
  sql: string,
  params?: ReadonlyArray<unknown>
) => Effect.Effect<ReadonlyArray<Row>, StoreError>

export interface Db {
  readonly dialect: "sqlite" | "postgres"
  /** One statement on its own. */
  readonly query: Query
  /** Runs `body` in one transaction that takes the write lock at once; `body` queries through its argument. */
  readonly transaction: <A, E>(
    body: (query: Query) => Effect.Effect<A, E>
  ) => Effect.Effect<A, E | StoreError>
}

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
  },
  {
    version: 3,
    statements: [
      `CREATE TABLE relay_webhooks (
         event_id TEXT PRIMARY KEY,
         event_type TEXT NOT NULL,
         received_at BIGINT NOT NULL,
         seen_at BIGINT
       )`,
      `CREATE INDEX relay_webhooks_received ON relay_webhooks (received_at)`
    ]
  },
  {
    // Several sources: a checkpoint per (sink, source). A sink's checkpoint of before
    // is its checkpoint for source `default` (a file's one `source:`), so it resumes
    // where it was; a dead letter says which source its event came from.
    version: 4,
    statements: [
      `CREATE TABLE relay_checkpoints_by_source (
         sink TEXT NOT NULL,
         source TEXT NOT NULL,
         cursor TEXT NOT NULL,
         event_created_at TEXT,
         updated_at BIGINT NOT NULL,
         PRIMARY KEY (sink, source)
       )`,
      `INSERT INTO relay_checkpoints_by_source (sink, source, cursor, event_created_at, updated_at)
         SELECT sink, 'default', cursor, event_created_at, updated_at FROM relay_checkpoints`,
      `DROP TABLE relay_checkpoints`,
      `ALTER TABLE relay_checkpoints_by_source RENAME TO relay_checkpoints`,
      `ALTER TABLE relay_dead_letters ADD COLUMN source TEXT NOT NULL DEFAULT 'default'`
    ]
  }
]

/** The lease row of the hot-standby lease (cluster units have their own: `unit:<name>`). */
const RUNNER_LEASE = "runner"

/** Says which operation a store error happened in (the statement alone tells a person little). */
const during =
  (operation: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.mapError(effect, (e) => (e instanceof StoreError ? (e.during(operation) as E) : e))

/** Runs the migrations not applied yet. */
export const migrate = (db: Db): Effect.Effect<void, StoreError> =>
  db
    .transaction((query) =>
      Effect.gen(function* () {
        // Two runners starting together on one Postgres: one migrates, the other waits for it.
        if (db.dialect === "postgres") yield* query("SELECT pg_advisory_xact_lock(727001)")
        yield* query(
          "CREATE TABLE IF NOT EXISTS relay_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
        )
        const rows = yield* query("SELECT version FROM relay_migrations")
        const applied = new Set(rows.map((r) => Number(r.version)))
        for (const migration of migrations) {
          if (applied.has(migration.version)) continue
          for (const statement of migration.statements) {
            yield* query(
              statement.replace(
                "__SERIAL__",
                db.dialect === "sqlite"
                  ? "INTEGER PRIMARY KEY AUTOINCREMENT"
                  : "BIGSERIAL PRIMARY KEY"
              )
            )
          }
          yield* query("INSERT INTO relay_migrations (version, applied_at) VALUES (?, ?)", [
            migration.version,
            Date.now()
          ])
        }
      })
    )
    .pipe(during("migrate the tables"))

const toDeadLetter = (r: Row): DeadLetter => ({
  id: Number(r.id),
  sink: String(r.sink),
  source: String(r.source),
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

/** The service over `db` (migrated: `migrate`). */
const toGap = (r: Row): RecordedGap => ({
  detectedAt: Number(r.detected_at),
  from: Number(r.gap_from),
  to: r.gap_to === null ? undefined : Number(r.gap_to),
  cursor: String(r.cursor),
  reason: String(r.reason),
  action: r.action === "stopped" ? "stopped" : "continued"
})

const toWebhook = (r: Row): WebhookDelivery => ({
  eventId: String(r.event_id),
  eventType: String(r.event_type),
  receivedAt: Number(r.received_at),
  seenAt: r.seen_at === null || r.seen_at === undefined ? undefined : Number(r.seen_at)
})

/** A (sink, source) in an error: as before for a file's one source. */
const laneText = (sink: string, source: string) =>
  source === defaultSource ? `sink ${sink}` : `sink ${sink} for source ${source}`

/** Statements with many ids take them in slices (SQLite allows 32766 parameters, Postgres 65535). */
const idSlice = 500

/**
 * Takes the lease `name` whoever holds it, with the next token: for a unit of cluster
 * mode, whose one-runner-at-a-time is the cluster's shard lock; the token fences a
 * copy that still runs elsewhere around a move (its commits are refused).
 */
export const claimLease = (
  db: Db,
  name: string,
  holder: string
): Effect.Effect<number, StoreError> =>
  db
    .query(
      `INSERT INTO relay_lease (name, holder, token, expires_at) VALUES (?, ?, 1, 0)
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = relay_lease.token + 1
       RETURNING token`,
      [name, holder]
    )
    .pipe(
      Effect.map((rows) => Number(rows[0]?.token)),
      during(`claim the fencing token of ${name}`)
    )

/** The service over `db`; its commits are fenced by the lease row `leaseName`. */
export const makeService = (
  db: Db,
  description: string,
  leaseName: string = RUNNER_LEASE
): Service => {
  const LEASE = leaseName
  const lease = () =>
    db.query("SELECT holder, token, expires_at FROM relay_lease WHERE name = ?", [LEASE]).pipe(
      Effect.map((rows) => toLease(rows[0])),
      during("read the lease")
    )
  // Inside a write transaction: the row is locked (SQLite: the database; Postgres: FOR SHARE).
  const fence = (query: Query, token: number | null) =>
    token === null
      ? Effect.void
      : query(
          `SELECT holder, token, expires_at FROM relay_lease WHERE name = ?${db.dialect === "postgres" ? " FOR SHARE" : ""}`,
          [LEASE]
        ).pipe(
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
          "SELECT sink, source, cursor, event_created_at, updated_at FROM relay_checkpoints ORDER BY sink, source"
        )
        .pipe(
          Effect.map((rows) =>
            rows.map((r) => ({
              sink: String(r.sink),
              source: String(r.source),
              cursor: String(r.cursor),
              eventCreatedAt: r.event_created_at === null ? null : String(r.event_created_at),
              updatedAt: Number(r.updated_at)
            }))
          ),
          during("read the checkpoints")
        ),
    checkpoint: (sink, source = defaultSource) =>
      service.checkpoints().pipe(
        Effect.map((all) => all.find((c) => c.sink === sink && c.source === source)),
        during(`read the checkpoint of ${laneText(sink, source)}`)
      ),
    commit: (sink, cursor, eventCreatedAt, token, source = defaultSource) =>
      db
        .transaction((query) =>
          Effect.gen(function* () {
            yield* fence(query, token)
            yield* query(
              `INSERT INTO relay_checkpoints (sink, source, cursor, event_created_at, updated_at) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (sink, source) DO UPDATE SET cursor = excluded.cursor,
                 event_created_at = excluded.event_created_at, updated_at = excluded.updated_at`,
              [sink, source, cursor, eventCreatedAt, Date.now()]
            )
          })
        )
        .pipe(during(`save the checkpoint of ${laneText(sink, source)} (${cursor})`)),
    addDeadLetters: (sink, letters, token, source = defaultSource) =>
      letters.length === 0
        ? Effect.void
        : db
            .transaction((query) =>
              Effect.gen(function* () {
                yield* fence(query, token)
                for (const l of letters) {
                  yield* query(
                    `INSERT INTO relay_dead_letters (sink, source, event_id, event_type, event, error, attempts, first_failure, last_failure)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
                    [
                      sink,
                      source,
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
            )
            .pipe(during(`save ${letters.length} dead letter(s) of ${laneText(sink, source)}`)),
    deadLetters: ({ sink, source, ids, limit }) => {
      const where: Array<string> = []
      const params: Array<unknown> = []
      if (sink !== undefined) {
        where.push("sink = ?")
        params.push(sink)
      }
      if (source !== undefined) {
        where.push("source = ?")
        params.push(source)
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
        .pipe(
          Effect.map((rows) => rows.map(toDeadLetter)),
          during("read the dead letters")
        )
    },
    deadLetterCounts: () =>
      db.query("SELECT sink, COUNT(*) AS n FROM relay_dead_letters GROUP BY sink").pipe(
        Effect.map((rows) => Object.fromEntries(rows.map((r) => [String(r.sink), Number(r.n)]))),
        during("count the dead letters")
      ),
    deadLetterCountsBySource: () =>
      db
        .query("SELECT sink, source, COUNT(*) AS n FROM relay_dead_letters GROUP BY sink, source")
        .pipe(
          Effect.map((rows) =>
            Object.fromEntries(
              rows.map((r) => [`${String(r.sink)}@${String(r.source)}`, Number(r.n)])
            )
          ),
          during("count the dead letters by source")
        ),
    dropDeadLetters: (ids) =>
      ids.length === 0
        ? Effect.succeed(0)
        : db
            .query(
              `DELETE FROM relay_dead_letters WHERE id IN (${ids.map(() => "?").join(", ")}) RETURNING id`,
              ids
            )
            .pipe(
              Effect.map((rows) => rows.length),
              during(`drop ${ids.length} dead letter(s)`)
            ),
    updateDeadLetter: (id, error, attempts, lastFailure) =>
      db
        .query(
          "UPDATE relay_dead_letters SET error = ?, attempts = ?, last_failure = ? WHERE id = ?",
          [error, attempts, lastFailure, id]
        )
        .pipe(Effect.asVoid, during(`update dead letter ${id}`)),
    acquireLease: (holder, ttl) =>
      db
        .transaction((query) =>
          Effect.gen(function* () {
            const now = Date.now()
            const rows = yield* query(
              `SELECT holder, token, expires_at FROM relay_lease WHERE name = ?${db.dialect === "postgres" ? " FOR UPDATE" : ""}`,
              [LEASE]
            )
            const current = toLease(rows[0])
            if (current === undefined) {
              yield* query(
                "INSERT INTO relay_lease (name, holder, token, expires_at) VALUES (?, ?, 1, ?)",
                [LEASE, holder, now + ttl]
              )
              return { holder, token: 1, expiresAt: now + ttl }
            }
            if (current.holder !== holder && current.expiresAt > now) return undefined
            // A new holder (or the same one after a restart) gets a new token: it fences the old.
            const token = current.token + 1
            yield* query(
              "UPDATE relay_lease SET holder = ?, token = ?, expires_at = ? WHERE name = ?",
              [holder, token, now + ttl, LEASE]
            )
            return { holder, token, expiresAt: now + ttl }
          })
        )
        .pipe(during("take the lease")),
    renewLease: (holder, token, ttl) =>
      db
        .query(
          "UPDATE relay_lease SET expires_at = ? WHERE name = ? AND holder = ? AND token = ? RETURNING token",
          [Date.now() + ttl, LEASE, holder, token]
        )
        .pipe(
          Effect.map((rows) => rows.length === 1),
          during(`renew the lease (token ${token})`)
        ),
    releaseLease: (holder, token) =>
      db
        .query(
          "UPDATE relay_lease SET expires_at = 0 WHERE name = ? AND holder = ? AND token = ?",
          [LEASE, holder, token]
        )
        .pipe(Effect.asVoid, during(`release the lease (token ${token})`)),
    lease,
    recordGap: (gap) =>
      db
        .query(
          "INSERT INTO relay_gaps (detected_at, gap_from, gap_to, cursor, reason, action) VALUES (?, ?, ?, ?, ?, ?)",
          [gap.detectedAt, gap.from, gap.to ?? null, gap.cursor, gap.reason, gap.action]
        )
        .pipe(Effect.asVoid, during("record a gap")),
    gaps: (limit) =>
      Effect.all({
        total: db
          .query("SELECT COUNT(*) AS n FROM relay_gaps")
          .pipe(Effect.map((rows) => Number(rows[0]?.n ?? 0))),
        recent: db
          .query(`SELECT * FROM relay_gaps ORDER BY id DESC LIMIT ${Math.floor(limit)}`)
          .pipe(Effect.map((rows) => rows.map(toGap)))
      }).pipe(during("read the gaps")),
    recordWebhook: (eventId, eventType, receivedAt) =>
      db
        .transaction((query) =>
          Effect.gen(function* () {
            const inserted = yield* query(
              `INSERT INTO relay_webhooks (event_id, event_type, received_at) VALUES (?, ?, ?)
               ON CONFLICT (event_id) DO NOTHING RETURNING event_id`,
              [eventId, eventType, receivedAt]
            )
            if (inserted.length === 1) return "new" as const
            const rows = yield* query("SELECT seen_at FROM relay_webhooks WHERE event_id = ?", [
              eventId
            ])
            return rows[0]?.seen_at === null || rows[0]?.seen_at === undefined
              ? ("pending" as const)
              : ("seen" as const)
          })
        )
        .pipe(during(`record the webhook of event ${eventId}`)),
    markWebhooksSeen: (eventIds, seenAt) =>
      eventIds.length === 0
        ? Effect.succeed(0)
        : db
            .transaction((query) =>
              Effect.gen(function* () {
                let marked = 0
                for (let i = 0; i < eventIds.length; i += idSlice) {
                  const ids = eventIds.slice(i, i + idSlice)
                  const rows = yield* query(
                    `UPDATE relay_webhooks SET seen_at = ? WHERE seen_at IS NULL AND event_id IN (${ids.map(() => "?").join(", ")}) RETURNING event_id`,
                    [seenAt, ...ids]
                  )
                  marked += rows.length
                }
                return marked
              })
            )
            .pipe(during(`mark ${eventIds.length} announced event(s) seen`)),
    pendingWebhooks: () =>
      db
        .query("SELECT * FROM relay_webhooks WHERE seen_at IS NULL ORDER BY received_at, event_id")
        .pipe(
          Effect.map((rows) => rows.map(toWebhook)),
          during("read the announced events not yet seen")
        ),
    pruneWebhooks: (before) =>
      db
        .query(
          "DELETE FROM relay_webhooks WHERE received_at < ? AND seen_at IS NOT NULL RETURNING event_id",
          [before]
        )
        .pipe(
          Effect.map((rows) => rows.length),
          during("prune the webhook table")
        ),
    webhookSummary: ({ since, overdueBefore, limit }) =>
      Effect.all({
        received: db
          .query("SELECT COUNT(*) AS n FROM relay_webhooks WHERE received_at >= ?", [since])
          .pipe(Effect.map((rows) => Number(rows[0]?.n ?? 0))),
        leads: db
          .query(
            "SELECT seen_at - received_at AS lead FROM relay_webhooks WHERE received_at >= ? AND seen_at IS NOT NULL ORDER BY lead",
            [since]
          )
          .pipe(Effect.map((rows) => rows.map((r) => Number(r.lead)))),
        overdue: Effect.all({
          total: db
            .query(
              "SELECT COUNT(*) AS n FROM relay_webhooks WHERE seen_at IS NULL AND received_at < ?",
              [overdueBefore]
            )
            .pipe(Effect.map((rows) => Number(rows[0]?.n ?? 0))),
          oldest: db
            .query(
              `SELECT * FROM relay_webhooks WHERE seen_at IS NULL AND received_at < ? ORDER BY received_at, event_id LIMIT ${Math.floor(limit)}`,
              [overdueBefore]
            )
            .pipe(Effect.map((rows) => rows.map(toWebhook)))
        })
      }).pipe(during("read the webhook table"))
  }
  return service
}
