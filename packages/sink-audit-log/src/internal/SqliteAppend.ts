/**
 * The write half of the SQLite store: opening a connection with the store's settings,
 * and appending one batch as one transaction, with its statements prepared once.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite"
import * as Chain from "../Chain.ts"
import type { AuditRecord } from "../Record.ts"
import { chunks, columns, dedupe, toRow } from "./Rows.ts"

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

/** `append(records)`: one transaction; skips event ids already kept; links the rest after the head. */
export const appender = (db: DatabaseSync): ((records: ReadonlyArray<AuditRecord>) => Appended) => {
  const readHead = db.prepare("SELECT head_seq, head_hash FROM audit_chain WHERE id = 1")
  const insert = db.prepare(
    `INSERT INTO audit_records (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`
  )
  const setHead = db.prepare(
    "UPDATE audit_chain SET head_seq = ?, head_hash = ?, head_count = head_count + ? WHERE id = 1"
  )
  // The id check, prepared once per number of ids (batches are mostly one size).
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
  return (records) =>
    transaction(db, () => {
      const unique = dedupe(records)
      const known = new Set<string>()
      for (const ids of chunks(
        unique.map((r) => r.id),
        500
      )) {
        const rows = selectKnown(ids.length).all(...ids) as Array<{ id: string }>
        for (const row of rows) known.add(row.id)
      }
      const fresh = known.size === 0 ? unique : unique.filter((r) => !known.has(r.id))
      const head = readHead.get() as unknown as ChainRow
      const linked = Chain.link({ seq: head.head_seq, hash: head.head_hash }, fresh)
      for (const record of linked) {
        const row = toRow(record)
        // In `columns` order.
        insert.run(
          row.seq as number,
          row.id,
          row.type,
          row.created_at,
          row.organization_id,
          row.actor_id,
          row.actor_name,
          row.actor,
          row.targets,
          row.ip_address,
          row.user_agent,
          row.event,
          row.prev_hash,
          row.hash
        )
      }
      const last = linked.at(-1)
      if (last !== undefined) setHead.run(last.seq, last.hash, linked.length)
      return { inserted: linked.length, duplicates: records.length - linked.length }
    })
}
