/**
 * The SQLite store's writes other than appending: migrations and retention. They run
 * where the store's writes run (the writer thread, or the caller's for `:memory:`), so
 * that waiting for a lock another process holds never stalls the caller's event loop.
 */
import type { DatabaseSync } from "node:sqlite"
import * as Chain from "../Chain.ts"
import type { PruneOptions } from "../Store.ts"
import { chainRowMissing } from "./Rows.ts"
import { BrokenStore, transaction } from "./SqliteAppend.ts"

/** The layout version migrations bring a store to (the package's `schemaVersion`). */
export const latestVersion = 2

/** Versioned migrations: migration N takes a store from version N-1 to N. */
export const migrations: ReadonlyArray<string> = [
  `CREATE TABLE audit_chain (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     anchor_seq INTEGER NOT NULL, anchor_hash TEXT NOT NULL,
     head_seq INTEGER NOT NULL, head_hash TEXT NOT NULL, head_count INTEGER NOT NULL);
   INSERT INTO audit_chain VALUES (1, 0, '${Chain.genesis}', 0, '${Chain.genesis}', 0);
   CREATE TABLE audit_records (
     seq INTEGER PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     type TEXT NOT NULL,
     created_at TEXT NOT NULL,
     organization_id TEXT,
     actor_id TEXT,
     actor_name TEXT,
     actor TEXT,
     targets TEXT NOT NULL,
     ip_address TEXT,
     user_agent TEXT,
     event TEXT NOT NULL,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL);
   CREATE INDEX audit_records_created ON audit_records (created_at, seq);
   CREATE INDEX audit_records_type ON audit_records (type, created_at);
   CREATE INDEX audit_records_org ON audit_records (organization_id, created_at);
   CREATE INDEX audit_records_actor_id ON audit_records (actor_id, created_at);
   CREATE INDEX audit_records_actor_name ON audit_records (actor_name, created_at);`,
  // 2: where an event breaks the spec; older records have none (NULL), and their
  // hashes never covered it. The partial index serves `audit query --mismatched`.
  `ALTER TABLE audit_records ADD COLUMN schema_mismatch TEXT;
   CREATE INDEX audit_records_mismatch ON audit_records (created_at, seq)
     WHERE schema_mismatch IS NOT NULL;`
]

/**
 * Brings the schema up to `latestVersion` in one transaction; returns the version found
 * when it is newer (nothing is written then), else undefined.
 */
export const migrate = (db: DatabaseSync): number | undefined =>
  transaction(db, () => {
    db.exec("CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    const row = db.prepare("SELECT value FROM audit_meta WHERE key = 'schema_version'").get() as
      | { value: string }
      | undefined
    const found = row === undefined ? 0 : Number(row.value)
    if (found > latestVersion) return found
    for (let v = found; v < latestVersion; v++) db.exec(migrations[v]!)
    db.prepare(
      "INSERT INTO audit_meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    ).run(String(latestVersion))
    return undefined
  })

export interface Pruned {
  readonly deleted: number
  readonly anchor: Chain.Anchor
}

/** Deletes the longest prefix of the chain created before `cutoff` (ISO), moving the anchor. */
export const prune = (db: DatabaseSync, cutoff: string, options: PruneOptions = {}): Pruned =>
  transaction(db, () => {
    let last: { seq: number; hash: string } | undefined
    let deleted = 0
    for (const row of db
      .prepare("SELECT seq, created_at, hash FROM audit_records ORDER BY seq")
      .iterate()) {
      const r = row as { seq: number; created_at: string; hash: string }
      if (r.created_at >= cutoff || (options.upTo !== undefined && r.seq > options.upTo)) break
      last = { seq: r.seq, hash: r.hash }
      deleted += 1
    }
    const state = db
      .prepare("SELECT anchor_seq, anchor_hash FROM audit_chain WHERE id = 1")
      .get() as { anchor_seq: number; anchor_hash: string } | undefined
    if (state === undefined) throw new BrokenStore(chainRowMissing)
    if (last === undefined) {
      return { deleted: 0, anchor: { seq: state.anchor_seq, hash: state.anchor_hash } }
    }
    if (options.plan === true) return { deleted, anchor: last }
    db.prepare("DELETE FROM audit_records WHERE seq <= ?").run(last.seq)
    db.prepare(
      "UPDATE audit_chain SET anchor_seq = ?, anchor_hash = ?, head_count = head_count - ? WHERE id = 1"
    ).run(last.seq, last.hash, deleted)
    return { deleted, anchor: last }
  })

/** SQLITE_BUSY (5) or SQLITE_LOCKED (6): another connection holds the lock. */
export const isLocked = (e: unknown): boolean => {
  const code = (e as { errcode?: unknown } | null)?.errcode
  return code === 5 || code === 6 || /database is locked/.test(String((e as Error)?.message))
}
