/**
 * The one interface every audit-log store implements (SQLite, Postgres, JSONL).
 *
 * `append` is one transaction and idempotent on the event id: records already kept
 * are skipped and never re-linked, so re-delivering a batch changes nothing and
 * the chain stays whole. A crash inside `append` leaves the store as it was before.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Chain from "./Chain.ts"
import { describeCause } from "./internal/Rows.ts"
import type { AuditRecord, StoredRecord } from "./Record.ts"

/**
 * The version of the store layout this package writes (see each store's migrations).
 * 2: records carry `schema_mismatch`, where the event breaks the spec.
 */
export const schemaVersion = 2

/** The kinds of store, as messages name them. */
export type StoreKind = "SQLite" | "Postgres" | "JSONL"

/**
 * The store could not be read or written (I/O, connection, lock). Its message names
 * the kind of store, where it is (a file, a folder, a URL without credentials) and
 * the operation: `SQLite audit log /var/lib/audit.db: appending a batch failed: ...`.
 */
export class StoreError extends Data.TaggedError("StoreError")<{
  readonly reason: string
  readonly cause?: unknown
  /** Retrying cannot help: the store is damaged and a person must repair it (the sink stops). */
  readonly fatal?: boolean
  readonly store?: StoreKind
  /** The file, folder or URL (without credentials). */
  readonly location?: string
  /** What was being done: "opening", "appending a batch", "verifying", ... */
  readonly operation?: string
  /** Another connection held the store's lock longer than the busy timeout: retrying helps. */
  readonly locked?: boolean
}> {
  override get message(): string {
    return this.reason
  }
}

/** A `StoreError` that names the store, where it is and the operation that failed. */
export const storeFailure = (options: {
  readonly store: StoreKind
  readonly location: string
  readonly operation: string
  /** What went wrong (the cause's message chain when absent). */
  readonly detail?: string
  readonly cause?: unknown
  readonly fatal?: boolean
  readonly locked?: boolean
}): StoreError =>
  new StoreError({
    reason: `${options.store} audit log ${options.location}: ${options.operation} failed: ${options.detail ?? describeCause(options.cause)}`,
    store: options.store,
    location: options.location,
    operation: options.operation,
    ...(options.cause === undefined ? {} : { cause: options.cause }),
    ...(options.fatal === true ? { fatal: true } : {}),
    ...(options.locked === true ? { locked: true } : {})
  })

/** The error of a write to a store opened read-only. */
export const openedReadOnly = (store: StoreKind, location: string): StoreError =>
  new StoreError({
    reason: `${store} audit log ${location}: opened read-only`,
    store,
    location,
    operation: "writing"
  })

/** The store was written by a newer version of this package; reading or writing it could corrupt it. */
export class SchemaTooNew extends Data.TaggedError("SchemaTooNew")<{
  /** Which store (a path, a folder, a database). */
  readonly where: string
  readonly found: number
  readonly supported: number
}> {
  override get message(): string {
    return `the audit log at ${this.where} has schema version ${this.found}, but this version of @workos-relay/sink-audit-log knows versions up to ${this.supported}: upgrade @workos-relay/sink-audit-log to read or write it`
  }
}

/**
 * A store opened read-only (`audit verify`, `audit query`) is not migrated: one written
 * by an older version of this package is refused, saying how to bring it up to date.
 */
export const schemaTooOld = (where: string, found: number): StoreError =>
  new StoreError({
    reason: `the audit log at ${where} has schema version ${found}, which this version of @workos-relay/sink-audit-log reads only after migrating it to version ${schemaVersion}: start the relay with this audit-log sink once (it migrates the store when it opens it), then try again`
  })

/** What a query selects. Every filter is optional; results are newest first. */
export interface Query {
  /** Event type patterns (`"dsync.user.*"`, `"authentication.*_failed"`); any of them matches. */
  readonly types?: ReadonlyArray<string>
  /** The organization id. */
  readonly org?: string
  /** The actor's id, or its name/email. */
  readonly actor?: string
  /** Events created at or after this time. */
  readonly since?: Date
  /** Events created before this time. */
  readonly until?: Date
  /** Only events that break the spec (a `schema_mismatch`). */
  readonly mismatched?: boolean
  /** At most this many records (100 when absent). */
  readonly limit?: number
  /**
   * Only records after this one in the query's order (newest first): the next page of a
   * query, from the last record of the one before. Records appended meanwhile never
   * shift a page, so paging shows each record once.
   */
  readonly before?: Cursor
}

/** A record's place in query order: its `created_at`, then its `seq` (unique). */
export interface Cursor {
  readonly createdAt: string
  readonly seq: number
}

export const defaultLimit = 100

export interface AppendResult {
  /** Records written now. */
  readonly inserted: number
  /** Records skipped because the store already held their event id. */
  readonly duplicates: number
}

export interface PruneResult {
  /** Records deleted. */
  readonly deleted: number
  /** Where the kept chain now starts. */
  readonly anchor: Chain.Anchor
}

/** How `prune` runs: `plan` deletes nothing and says what it would cut; `upTo` cuts no record after that seq. */
export interface PruneOptions {
  readonly plan?: boolean
  readonly upTo?: number
}

export interface Shape {
  /** Where the store is, for messages (a path, a folder, a database name; never a password). */
  readonly where: string
  /** Appends records in order, as one transaction, skipping event ids already kept. */
  readonly append: (records: ReadonlyArray<AuditRecord>) => Effect.Effect<AppendResult, StoreError>
  /** Records matching the query, newest first. */
  readonly query: (query: Query) => Effect.Effect<ReadonlyArray<StoredRecord>, StoreError>
  /** Walks the chain from the anchor and reports the first modified, deleted, inserted or moved record. */
  readonly verify: Effect.Effect<Chain.Report, StoreError>
  /**
   * Deletes the oldest records created before `before`, as a prefix of the chain (a
   * record is kept while an older one after it is kept), and keeps the hash of the
   * last deleted record as the anchor the chain verifies from. With `plan`, it deletes
   * nothing and returns what it would delete (retention signs that before cutting).
   */
  readonly prune: (before: Date, options?: PruneOptions) => Effect.Effect<PruneResult, StoreError>
  /**
   * Where the chain starts and ends as the store says (no walk): what a signed digest
   * records. Undefined when the store has no chain state (a damaged or wiped store).
   */
  readonly head: Effect.Effect<ChainState | undefined, StoreError>
}

/** A store's anchor and head. */
export interface ChainState {
  readonly anchor: Chain.Anchor
  readonly head: Chain.Head
}

export class Store extends Context.Service<Store, Shape>()("@workos-relay/sink-audit-log/Store") {}

/** SQL `LIKE` for an event type pattern (`*` is any run of characters; `_` and `%` are literal). */
export const patternToLike = (pattern: string): string =>
  pattern.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, "%")

/** The records of the `Store` in context that match the query, newest first. */
export const query = (q: Query): Effect.Effect<ReadonlyArray<StoredRecord>, StoreError, Store> =>
  Effect.flatMap(Store, (store) => store.query(q))

/** Verifies the chain of the `Store` in context. */
export const verify: Effect.Effect<Chain.Report, StoreError, Store> = Effect.flatMap(
  Store,
  (store) => store.verify
)
