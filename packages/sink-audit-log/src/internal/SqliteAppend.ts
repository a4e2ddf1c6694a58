/**
 * The write half of the SQLite store: opening a connection with the store's settings,
 * and appending one batch as one transaction, with its statements prepared once.
 *
 * The store runs `appender` on its writer thread (`SqliteWorker.ts`).
 */
import { hash as digest } from "node:crypto"
import { DatabaseSync, type StatementSync } from "node:sqlite"
import * as Chain from "../Chain.ts"
import type { AuditRecord } from "../Record.ts"
import { columns } from "./Rows.ts"

/**
 * WAL with `synchronous=FULL`: every commit is fsynced, so a batch the sink reported
 * delivered survives a power cut too. (`NORMAL` would keep the file consistent but could
 * lose the last commits, while the runner's checkpoint, in another file or database,
 * already moved past them: those events would be lost. The fsync is once per batch.)
 */
export const open = (path: string): DatabaseSync => {
  // The busy timeout first: switching to WAL takes a lock too, and `audit verify` or
  // another writer may be opening the same file right now.
  const db = new DatabaseSync(path, { timeout: 10_000 })
  db.exec("PRAGMA journal_mode = WAL")
  db.exec("PRAGMA synchronous = FULL")
  return db
}

/**
 * The writer's connection: `open`, plus settings that only pay off when appending.
 * A 16 MiB page cache keeps the hot leaf pages of the five indexes (one per type,
 * organization and actor) in memory instead of reading them back for every batch. The
 * WAL is folded into the file every 10,000 pages (~40 MiB) instead of every 1,000: each
 * checkpoint writes the pages it holds and fsyncs the file, and an index page rewritten
 * by several batches is then written once. Every commit is still fsynced.
 */
export const openWriter = (path: string): DatabaseSync => {
  const db = open(path)
  db.exec("PRAGMA cache_size = -16384")
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

interface ChainRow {
  head_seq: number
  head_hash: string
}

export interface Appended {
  readonly inserted: number
  readonly duplicates: number
}

/**
 * `append(records)`: one transaction; links each record after the head unless the
 * store (or the batch, earlier) already holds its event id.
 */
export const appender = (db: DatabaseSync): ((records: ReadonlyArray<AuditRecord>) => Appended) => {
  const readHead = db.prepare("SELECT head_seq, head_hash FROM audit_chain WHERE id = 1")
  // An id seen earlier in the same batch inserts nothing (changes = 0) and is not linked.
  // Any other conflict (a seq) still fails the batch.
  const insert = db.prepare(
    `INSERT INTO audit_records (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")}) ON CONFLICT (id) DO NOTHING`
  )
  const setHead = db.prepare(
    "UPDATE audit_chain SET head_seq = ?, head_hash = ?, head_count = head_count + ? WHERE id = 1"
  )
  // Ids the store already holds, looked up 500 at a time before any JSON or hashing,
  // so that a re-delivered batch costs index lookups only. Prepared once per count.
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
  const knownIds = (records: ReadonlyArray<AuditRecord>): Set<string> => {
    const known = new Set<string>()
    for (let from = 0; from < records.length; from += 500) {
      const ids = records.slice(from, from + 500).map((r) => r.id)
      for (const row of selectKnown(ids.length).all(...ids)) known.add(row.id as string)
    }
    return known
  }
  return (records) =>
    transaction(db, () => {
      const known = knownIds(records)
      const head = readHead.get() as unknown as ChainRow
      let seq = head.head_seq
      let prev = head.head_hash
      let inserted = 0
      for (const r of records) {
        if (known.has(r.id)) continue
        const hash = digest("sha256", prev + Chain.canonicalContent(r), "hex")
        // In `columns` order, as `toRow` writes them.
        const { changes } = insert.run(
          seq + 1,
          r.id,
          r.type,
          r.created_at,
          r.organization_id,
          r.actor?.id ?? null,
          r.actor?.name ?? null,
          r.actor === null ? null : JSON.stringify(r.actor),
          JSON.stringify(r.targets),
          r.ip_address,
          r.user_agent,
          JSON.stringify(r.event),
          prev,
          hash
        )
        if (Number(changes) === 0) continue
        seq += 1
        prev = hash
        inserted += 1
      }
      if (inserted > 0) setHead.run(seq, prev, inserted)
      return { inserted, duplicates: records.length - inserted }
    })
}
