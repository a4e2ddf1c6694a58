/**
 * What the state store keeps and how it fails: checkpoints, dead letters, the lease,
 * the `Service` both stores implement, and their errors.
 */
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"

/** The source of a checkpoint or dead letter when none is named: a file's one `source:`. */
export const defaultSource = "default"

/** A checkpoint per (sink, source): a sink fed by two sources keeps two. */
export interface Checkpoint {
  readonly sink: string
  /** The config's name of the source (`default` for a file's one `source:`). */
  readonly source: string
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
  /** The source the event was read from (`default` for a file's one `source:`). */
  readonly source: string
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

/** An event a webhook announced, as the store keeps it to compare push with pull. */
export interface WebhookDelivery {
  readonly eventId: string
  readonly eventType: string
  /** When the first delivery of it was accepted (ms since the epoch). */
  readonly receivedAt: number
  /** When the reader first returned the event from the Events API; undefined: not yet. */
  readonly seenAt: number | undefined
}

/** What `status` shows of the webhooks. */
export interface WebhookSummary {
  /** Events announced since `since`. */
  readonly received: number
  /** Of those, how long after the webhook the reader returned each (ms), ascending. */
  readonly leads: ReadonlyArray<number>
  /** Announced before `overdueBefore` and never returned by the reader: how many, and the oldest `limit`. */
  readonly overdue: { readonly total: number; readonly oldest: ReadonlyArray<WebhookDelivery> }
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

/**
 * What went wrong, as far as waiting can help: `locked` (another process holds
 * SQLite's write lock), `full` (the disk), `read-only` (the file, its folder or the
 * mount), `unreachable` (Postgres went away), `io` (another I/O error), or `other`
 * (a corrupt file, a bug: waiting does not help).
 */
export type Problem = "locked" | "full" | "read-only" | "unreachable" | "io" | "other"

const sqliteProblems: Record<number, Problem> = {
  5: "locked", // SQLITE_BUSY
  6: "locked", // SQLITE_LOCKED
  8: "read-only", // SQLITE_READONLY
  10: "io", // SQLITE_IOERR
  13: "full", // SQLITE_FULL
  14: "io", // SQLITE_CANTOPEN
  15: "locked" // SQLITE_PROTOCOL (a lock race in WAL mode)
}

const systemProblems: Record<string, Problem> = {
  ENOSPC: "full",
  EDQUOT: "full",
  EROFS: "read-only",
  EACCES: "read-only",
  EPERM: "read-only",
  ECONNREFUSED: "unreachable",
  ECONNRESET: "unreachable",
  ETIMEDOUT: "unreachable",
  EHOSTUNREACH: "unreachable",
  ENETUNREACH: "unreachable",
  EPIPE: "unreachable",
  EIO: "io"
}

/** The problem behind a driver's error (node:sqlite, @effect/sql-pg, node:fs), looking through its causes. */
export const problemOf = (cause: unknown): Problem => {
  let error = cause as Record<string, unknown> | undefined
  for (let i = 0; i < 6 && typeof error === "object" && error !== null; i++) {
    if (typeof error.errcode === "number") {
      const problem = sqliteProblems[error.errcode & 0xff]
      if (problem === "io" && /disk is full|no space/i.test(String(error.message))) return "full"
      return problem ?? "other"
    }
    const code = error.code
    if (typeof code === "string") {
      if (code in systemProblems) return systemProblems[code]!
      // Postgres SQLSTATEs: 08 connection, 53 insufficient resources (53100 disk full),
      // 57P01-57P03 shut down or starting, 40001/40P01 serialization and deadlock.
      if (code === "53100") return "full"
      if (code.startsWith("08") || /^57P0[123]$/.test(code)) return "unreachable"
      if (code === "40001" || code === "40P01" || code === "55P03") return "locked"
    }
    if (error._tag === "SqlError" && /connect|connection/i.test(String(error.message)))
      return "unreachable"
    error = error.cause as Record<string, unknown> | undefined
  }
  return "other"
}

const hints: Record<Problem, string> = {
  locked: "another process holds the database's write lock",
  full: "the disk (or the database's quota) is full",
  "read-only": "the store or its folder cannot be written (read-only mount or permissions)",
  unreachable: "the database server cannot be reached",
  io: "an I/O error",
  other: ""
}

/**
 * A state store operation failed. The message names the store (its file, or the
 * Postgres server without credentials), the operation and the cause.
 */
export class StoreError extends Data.TaggedError("StoreError")<{
  /** `SQLite state store at <file>` or `Postgres state store at <host:port/db>`. */
  readonly store: string
  readonly operation: string
  readonly cause: unknown
}> {
  get problem(): Problem {
    return problemOf(this.cause)
  }

  /** Whether the same operation may succeed later (a lock, a full disk, a server away). */
  get retriable(): boolean {
    return this.problem !== "other"
  }

  override get message(): string {
    const cause = this.cause as Error | undefined
    const outer = cause?.message ?? String(cause)
    // Drivers wrap the system's reason ("PgConnection: Failed to connect" around ECONNREFUSED).
    let root = cause
    for (let i = 0; i < 5 && root?.cause instanceof Error; i++) root = root.cause
    const inner = root?.message
    const hint = hints[this.problem]
    const said = `${outer}${inner === undefined || inner === outer ? "" : ` (${inner})`}`
    return `${this.store}: ${this.operation} failed: ${said}${hint === "" || said.includes(hint) ? "" : `: ${hint}`}`
  }

  /** The same failure, said of the operation a caller was doing. */
  during(operation: string): StoreError {
    return new StoreError({ store: this.store, operation, cause: this.cause })
  }
}

export interface Service {
  /** `sqlite:<path>` or `postgres`, for `status`. */
  readonly description: string
  readonly checkpoints: () => Effect.Effect<ReadonlyArray<Checkpoint>, StoreError>
  /** The checkpoint of a sink for a source (default: `default`). */
  readonly checkpoint: (
    sink: string,
    source?: string
  ) => Effect.Effect<Checkpoint | undefined, StoreError>
  /**
   * Moves a sink's checkpoint for a source (default: `default`); refused unless `token`
   * is the lease's current token (null: no fencing).
   */
  readonly commit: (
    sink: string,
    cursor: string,
    eventCreatedAt: string | null,
    token: number | null,
    source?: string
  ) => Effect.Effect<void, StoreError | LeaseLost>
  readonly addDeadLetters: (
    sink: string,
    letters: ReadonlyArray<NewDeadLetter>,
    token: number | null,
    source?: string
  ) => Effect.Effect<void, StoreError | LeaseLost>
  readonly deadLetters: (filter: {
    readonly sink?: string | undefined
    readonly source?: string | undefined
    readonly ids?: ReadonlyArray<number> | undefined
    readonly limit?: number | undefined
  }) => Effect.Effect<ReadonlyArray<DeadLetter>, StoreError>
  readonly deadLetterCounts: () => Effect.Effect<Readonly<Record<string, number>>, StoreError>
  /** Dead letters by (sink, source), keyed `sink@source`. */
  readonly deadLetterCountsBySource: () => Effect.Effect<
    Readonly<Record<string, number>>,
    StoreError
  >
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
  /**
   * Keeps an announced event (upsert: a repeated delivery changes nothing). Says what
   * the store knew of it: `new`, `pending` (announced before, not yet seen) or `seen`.
   */
  readonly recordWebhook: (
    eventId: string,
    eventType: string,
    receivedAt: number
  ) => Effect.Effect<"new" | "pending" | "seen", StoreError>
  /** The reader returned these events: announced ones not yet seen are seen at `seenAt`; how many. */
  readonly markWebhooksSeen: (
    eventIds: ReadonlyArray<string>,
    seenAt: number
  ) => Effect.Effect<number, StoreError>
  /** Announced events the reader has not returned yet, oldest first. */
  readonly pendingWebhooks: () => Effect.Effect<ReadonlyArray<WebhookDelivery>, StoreError>
  /** Drops seen events received before `before` (pending ones are kept: they are the report); how many. */
  readonly pruneWebhooks: (before: number) => Effect.Effect<number, StoreError>
  readonly webhookSummary: (options: {
    readonly since: number
    readonly overdueBefore: number
    readonly limit: number
  }) => Effect.Effect<WebhookSummary, StoreError>
}
