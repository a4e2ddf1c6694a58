/**
 * The write half of the SQLite store: opening a connection with the store's settings,
 * and appending one batch as one transaction, with its statements prepared once.
 *
 * Appending is split in two so that the SQLite half can run on a writer thread
 * (`SqliteWorker.ts`): `prepareBatch` turns records into the strings a row holds
 * (pure, on the caller's thread), and `appender` hashes, links and inserts them in
 * one transaction (on the thread that owns the connection).
 */
import { hash as digest } from "node:crypto"
import { DatabaseSync, type StatementSync } from "node:sqlite"
import * as Chain from "../Chain.ts"
import type { AuditRecord } from "../Record.ts"
import { chainRowMissing, columns } from "./Rows.ts"

/**
 * How long a write waits for a lock another connection holds before it fails (and the
 * runner retries the batch). The wait is on the writer thread, never the caller's.
 */
export const defaultBusyTimeoutMs = 10_000

/**
 * WAL with `synchronous=FULL`: every commit is fsynced, so a batch the sink reported
 * delivered survives a power cut too. (`NORMAL` would keep the file consistent but could
 * lose the last commits, while the runner's checkpoint, in another file or database,
 * already moved past them: those events would be lost. The fsync is once per batch.)
 */
export const open = (path: string, busyTimeoutMs = defaultBusyTimeoutMs): DatabaseSync => {
  // The busy timeout first: switching to WAL takes a lock too, and `audit verify` or
  // another writer may be opening the same file right now.
  const db = new DatabaseSync(path, { timeout: busyTimeoutMs })
  try {
    db.exec("PRAGMA journal_mode = WAL")
    db.exec("PRAGMA synchronous = FULL")
  } catch (e) {
    db.close()
    throw e
  }
  return db
}

/**
 * The writer's connection: `open`, plus settings that only pay off when appending.
 * A 4 MiB page cache (SQLite's default is 2 MiB) for the hot leaf pages of the five
 * indexes: appending 100k records to a 600k-record store (5,000 organizations, 50,000
 * actors) ran as fast with it as with 16 MiB, and the runner's peak RSS is ~15 MiB
 * lower (a page missing from the cache is read back from the OS's file cache). The
 * WAL is folded into the file every 10,000 pages (~40 MiB) instead of every 1,000: each
 * checkpoint writes the pages it holds and fsyncs the file, and an index page rewritten
 * by several batches is then written once. Every commit is still fsynced.
 */
export const openWriter = (path: string, busyTimeoutMs = defaultBusyTimeoutMs): DatabaseSync => {
  const db = open(path, busyTimeoutMs)
  db.exec("PRAGMA cache_size = -4096")
  db.exec("PRAGMA wal_autocheckpoint = 10000")
  return db
}

/** Runs `f` inside `BEGIN IMMEDIATE` ... `COMMIT`, rolling back on any error. */
export const transaction = <A>(db: DatabaseSync, f: () => A): A => {
  db.exec("BEGIN IMMEDIATE")
  try {
    const a = f()
    db.exec("COMMIT")
    return a
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK")
    throw e
  }
}

/**
 * A batch ready to append: per record, `fieldsPerRecord` values in a row, those of
 * `columns` from `id` to `schema_mismatch`. A flat array of strings, so that posting
 * it to a worker copies little.
 *
 * The JSON columns (`actor`, `targets`, `event`) hold canonical JSON (see Chain): the
 * very text the record's hash covers. The hashed content is then those texts and the
 * other fields put together (`canonicalContent`), and each event is written out once,
 * not once for the row and once more for its hash. The event keeps every field WorkOS
 * sent; only its keys are in sorted order.
 */
export type PreparedBatch = ReadonlyArray<string | null>

/** id, type, created_at, organization_id, actor_id, actor_name, actor, targets, ip_address, user_agent, event, schema_mismatch. */
export const fieldsPerRecord = 12

/** The row values of each record (no I/O). */
export const prepareBatch = (records: ReadonlyArray<AuditRecord>): PreparedBatch => {
  const out: Array<string | null> = new Array(records.length * fieldsPerRecord)
  let i = 0
  for (const r of records) {
    out[i++] = r.id
    out[i++] = r.type
    out[i++] = r.created_at
    out[i++] = r.organization_id
    out[i++] = r.actor?.id ?? null
    out[i++] = r.actor?.name ?? null
    out[i++] = r.actor === null ? null : Chain.canonicalJson(r.actor)
    out[i++] = Chain.canonicalJson(r.targets)
    out[i++] = r.ip_address
    out[i++] = r.user_agent
    out[i++] = Chain.canonicalJson(r.event)
    out[i++] = r.schema_mismatch ?? null
  }
  return out
}

const text = (value: string | null | undefined): string =>
  value === null || value === undefined ? "null" : JSON.stringify(value)

/**
 * `Chain.canonicalContent` of the record at `i`, from its row values: the fields in
 * canonical key order, the JSON ones as they are (already canonical), and
 * `schema_mismatch` only when there is one.
 */
export const canonicalContent = (batch: PreparedBatch, i: number): string => {
  const mismatch = batch[i + 11]
  return `{"actor":${batch[i + 6] ?? "null"},"created_at":${text(batch[i + 2])},"event":${batch[i + 10]},"id":${text(batch[i])},"ip_address":${text(batch[i + 8])},"organization_id":${text(batch[i + 3])},${mismatch === null || mismatch === undefined ? "" : `"schema_mismatch":${text(mismatch)},`}"targets":${batch[i + 7]},"type":${text(batch[i + 1])},"user_agent":${text(batch[i + 9])}}`
}

interface ChainRow {
  head_seq: number
  head_hash: string
}

/** The store is damaged so that appending cannot go on (retrying will not help). */
export class BrokenStore extends Error {}

export interface Appended {
  readonly inserted: number
  readonly duplicates: number
}

/**
 * Appends to one connection. A batch is one transaction, linking each record after
 * the head unless the store (or the batch, earlier) already holds its event id.
 */
export interface Appender {
  /** Appends a whole batch. */
  readonly append: (batch: PreparedBatch) => Appended
  /**
   * Appends a batch given in parts, in order: the first part begins the transaction
   * and the last commits it (and returns what was appended). A part that fails rolls
   * the whole batch back; so does `abort`.
   */
  readonly appendPart: (part: PreparedBatch, last: boolean) => Appended | undefined
  readonly abort: () => void
}

export const appender = (db: DatabaseSync): Appender => {
  const readHead = db.prepare("SELECT head_seq, head_hash FROM audit_chain WHERE id = 1")
  // An id seen earlier in the same batch inserts nothing (changes = 0) and is not linked.
  // Any other conflict (a seq) still fails the batch.
  const insert = db.prepare(
    `INSERT INTO audit_records (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")}) ON CONFLICT (id) DO NOTHING`
  )
  const setHead = db.prepare(
    "UPDATE audit_chain SET head_seq = ?, head_hash = ?, head_count = head_count + ? WHERE id = 1"
  )
  // Ids the store already holds, looked up 500 at a time before any hashing, so that a
  // re-delivered batch costs index lookups only. Prepared once per number of ids.
  const knownStatements = new Map<number, StatementSync>()
  const selectKnown = (n: number): StatementSync => {
    let stmt = knownStatements.get(n)
    if (stmt === undefined) {
      stmt = db.prepare(
        `SELECT id FROM audit_records WHERE id IN (${Array.from({ length: n }, () => "?").join(",")})`
      )
      if (knownStatements.size < 16) knownStatements.set(n, stmt)
    }
    return stmt
  }
  const knownIds = (batch: PreparedBatch): Set<string> => {
    const known = new Set<string>()
    const ids: Array<string> = []
    for (let i = 0; i < batch.length; i += fieldsPerRecord) ids.push(batch[i]!)
    for (let from = 0; from < ids.length; from += 500) {
      const chunk = ids.slice(from, from + 500)
      for (const row of selectKnown(chunk.length).all(...chunk)) known.add(row.id as string)
    }
    return known
  }

  /** The batch being appended: the transaction is open. */
  let open: { seq: number; prev: string; inserted: number; records: number } | undefined

  const abort = () => {
    open = undefined
    if (db.isTransaction) db.exec("ROLLBACK")
  }

  const appendPart = (part: PreparedBatch, last: boolean): Appended | undefined => {
    try {
      if (open === undefined) {
        db.exec("BEGIN IMMEDIATE")
        const head = readHead.get() as ChainRow | undefined
        if (head === undefined) throw new BrokenStore(chainRowMissing)
        open = { seq: head.head_seq, prev: head.head_hash, inserted: 0, records: 0 }
      }
      const batch = open
      const known = knownIds(part)
      batch.records += part.length / fieldsPerRecord
      for (let i = 0; i < part.length; i += fieldsPerRecord) {
        if (known.has(part[i]!)) continue
        const hash = digest("sha256", batch.prev + canonicalContent(part, i), "hex")
        // In `columns` order.
        const { changes } = insert.run(
          batch.seq + 1,
          part[i]!,
          part[i + 1]!,
          part[i + 2]!,
          part[i + 3]!,
          part[i + 4]!,
          part[i + 5]!,
          part[i + 6]!,
          part[i + 7]!,
          part[i + 8]!,
          part[i + 9]!,
          part[i + 10]!,
          part[i + 11]!,
          batch.prev,
          hash
        )
        if (Number(changes) === 0) continue
        batch.seq += 1
        batch.prev = hash
        batch.inserted += 1
      }
      if (!last) return undefined
      if (batch.inserted > 0) setHead.run(batch.seq, batch.prev, batch.inserted)
      db.exec("COMMIT")
      open = undefined
      return { inserted: batch.inserted, duplicates: batch.records - batch.inserted }
    } catch (e) {
      abort()
      throw e
    }
  }

  return { append: (batch) => appendPart(batch, true)!, appendPart, abort }
}
