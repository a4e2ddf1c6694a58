/**
 * Where the mirror's tables live: the contract both stores (SQLite, Postgres) keep.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type { Row } from "./Mapping.ts"
import type { TableName } from "./Tables.ts"

/** The schema version this package writes; migration N takes a store from N-1 to N. */
export const schemaVersion = 2

export class StoreError extends Data.TaggedError("StoreError")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return this.reason
  }
}

/** The store was written by a newer version of this package: refused, never downgraded. */
export class SchemaTooNew extends Data.TaggedError("SchemaTooNew")<{
  readonly where: string
  readonly found: number
  readonly supported: number
}> {
  override get message(): string {
    return `mirror ${this.where}: its schema is version ${this.found}, newer than this package's (${this.supported}); upgrade @workos-relay/sink-mirror`
  }
}

/** A row as stored. */
export type StoredRow = Row

/** Rows per table: those alive and those tombstoned. */
export type Counts = Readonly<
  Record<TableName, { readonly live: number; readonly deleted: number }>
>

/** The last event a batch applied. */
export interface LastEvent {
  readonly id: string
  readonly at: string
}

export interface Shape {
  /** Where the tables are, for messages (a path, or host and database; never a password). */
  readonly where: string
  /**
   * Merges these row versions into the tables (see `Mapping.merge`) in one
   * transaction, and records `last` as the last event applied.
   */
  readonly apply: (
    rows: ReadonlyArray<Row>,
    last?: LastEvent | undefined
  ) => Effect.Effect<void, StoreError>
  /** Every row of a table, tombstones included, ordered by id. */
  readonly rows: (table: TableName) => Effect.Effect<ReadonlyArray<StoredRow>, StoreError>
  readonly counts: Effect.Effect<Counts, StoreError>
  /** A value of the mirror's own bookkeeping (`last_event_id`, `last_reconcile`, ...). */
  readonly meta: (key: string) => Effect.Effect<string | undefined, StoreError>
  readonly setMeta: (key: string, value: string) => Effect.Effect<void, StoreError>
}

export class Store extends Context.Service<Store, Shape>()("@workos-relay/sink-mirror/Store") {}

/** Meta keys. */
export const metaKeys = {
  lastEventId: "last_event_id",
  lastEventAt: "last_event_at",
  lastAppliedAt: "last_applied_at",
  lastReconcile: "last_reconcile",
  bootstrappedAt: "bootstrapped_at"
} as const
