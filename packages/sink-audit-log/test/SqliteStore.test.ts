import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Chain from "../src/Chain.ts"
import { columns, toRow } from "../src/internal/Rows.ts"
import { canonicalContent, prepareBatch } from "../src/internal/SqliteAppend.ts"
import * as Record from "../src/Record.ts"
import * as SqliteStore from "../src/SqliteStore.ts"
import { all, drifted, events } from "./fixtures.ts"
import { type Opened, retentionSuite, sqlSuite, storeSuite } from "./storeSuite.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "audit-sqlite-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

let n = 0
const raw = (file: string, f: (db: DatabaseSync) => void) =>
  Promise.resolve().then(() => {
    const db = new DatabaseSync(file)
    try {
      f(db)
    } finally {
      db.close()
    }
  })

const open = (key: string) =>
  Effect.gen(function* () {
    const file = path.join(dir, `${key}-${++n}`, "audit.db")
    const store = yield* SqliteStore.make({ path: file })
    const opened: Opened = {
      store,
      reopen: SqliteStore.make({ path: file }),
      tamper: {
        modify: (seq) =>
          raw(file, (db) =>
            db.prepare("UPDATE audit_records SET ip_address = '6.6.6.6' WHERE seq = ?").run(seq)
          ),
        remove: (seq) =>
          raw(file, (db) => db.prepare("DELETE FROM audit_records WHERE seq = ?").run(seq)),
        insertAfter: (seq, record) =>
          raw(file, (db) => {
            db.prepare("UPDATE audit_records SET seq = seq + 1000000 WHERE seq > ?").run(seq)
            db.prepare("UPDATE audit_records SET seq = seq - 999999 WHERE seq > 1000000").run()
            const row = toRow(record)
            db.prepare(
              `INSERT INTO audit_records (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`
            ).run(...columns.map((c) => row[c] as string | number | null))
          }),
        swap: (seq) =>
          raw(file, (db) => {
            db.prepare("UPDATE audit_records SET seq = -1 WHERE seq = ?").run(seq)
            db.prepare("UPDATE audit_records SET seq = ? WHERE seq = ?").run(seq, seq + 1)
            db.prepare("UPDATE audit_records SET seq = ? WHERE seq = -1").run(seq + 1)
          }),
        setActorColumns: (seq, id, name) =>
          raw(file, (db) =>
            db
              .prepare("UPDATE audit_records SET actor_id = ?, actor_name = ? WHERE seq = ?")
              .run(id, name, seq)
          ),
        deleteChainRow: () => raw(file, (db) => db.exec("DELETE FROM audit_chain")),
        setMismatch: (seq, value) =>
          raw(file, (db) =>
            db.prepare("UPDATE audit_records SET schema_mismatch = ? WHERE seq = ?").run(value, seq)
          ),
        downgrade: () =>
          raw(file, (db) =>
            db.exec(`DROP INDEX audit_records_mismatch;
              ALTER TABLE audit_records DROP COLUMN schema_mismatch;
              UPDATE audit_meta SET value = '1' WHERE key = 'schema_version';`)
          )
      }
    }
    return opened
  })

describe("SqliteStore", () => {
  storeSuite(open)
  retentionSuite(open)
  sqlSuite(open)

  it.live("creates its folder, uses WAL, and defaults to ./.workos-relay/audit.db", () =>
    Effect.gen(function* () {
      expect(SqliteStore.defaultPath).toBe("./.workos-relay/audit.db")
      const file = path.join(dir, "new", "deep", "audit.db")
      yield* SqliteStore.make({ path: file })
      const db = new DatabaseSync(file)
      const mode = db.prepare("PRAGMA journal_mode").get() as { journal_mode: string }
      db.close()
      expect(mode.journal_mode).toBe("wal")
    })
  )

  it.live("batches appended at once are written one after another; the chain holds", () =>
    Effect.gen(function* () {
      const { store } = yield* open("concurrent")
      const batches = Array.from({ length: 6 }, (_, b) =>
        events(50, 1 + b * 40).map(Record.fromEvent)
      )
      // Overlapping ids between batches: each id is kept once, whichever batch wins.
      const results = yield* Effect.forEach(batches, (batch) => store.append(batch), {
        concurrency: "unbounded"
      })
      expect(results.reduce((n, r) => n + r.inserted, 0)).toBe(5 * 40 + 50)
      expect(results.reduce((n, r) => n + r.inserted + r.duplicates, 0)).toBe(6 * 50)
      const report = yield* store.verify
      expect(report.problem).toBeNull()
      expect(report.records).toBe(250)
    })
  )

  it.live("closing the scope ends the writer thread after its batches: nothing is lost", () =>
    Effect.gen(function* () {
      const file = path.join(dir, "close", "audit.db")
      const batch = events(500).map(Record.fromEvent)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const store = yield* SqliteStore.make({ path: file })
          yield* Effect.forkScoped(store.append(batch.slice(0, 250)))
          yield* store.append(batch.slice(250))
        })
      )
      // With every connection closed (the writer thread's too), SQLite folds the WAL
      // back into the file and removes it.
      expect(fs.existsSync(`${file}-wal`)).toBe(false)
      const again = yield* Effect.scoped(
        Effect.flatMap(SqliteStore.make({ path: file }), (store) => store.verify)
      )
      expect(again.problem).toBeNull()
      expect(again.records).toBe(500)
    })
  )

  it.live(
    "a batch is written in parts, as one transaction: a failure in a later part keeps none of it",
    () =>
      Effect.gen(function* () {
        const { store } = yield* open("parts")
        // 600 records: three parts on the writer thread, with ids repeated across parts.
        const batch = events(600).map(Record.fromEvent)
        const repeated = [...batch, ...batch.slice(100, 400)]
        yield* Effect.promise(() =>
          raw(store.where, (db) =>
            db.exec(
              `CREATE TRIGGER boom BEFORE INSERT ON audit_records WHEN NEW.id = '${batch[560]!.id}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END`
            )
          )
        )
        const error = yield* Effect.flip(store.append(repeated))
        expect(error.message).toContain("injected failure")
        expect((yield* store.query({ limit: 1000 })).length).toBe(0)
        // A record that cannot be written as JSON, in the second part: the parts already
        // posted are rolled back, and the store takes the next batch.
        const unwritable = [...batch]
        unwritable[300] = { ...batch[300]!, event: { id: batch[300]!.id, size: 1n } }
        const thrown = yield* Effect.flip(store.append(unwritable))
        expect(thrown.message).toContain("BigInt")
        expect((yield* store.query({ limit: 1000 })).length).toBe(0)
        // The next batch starts a transaction of its own, from the same head.
        yield* Effect.promise(() => raw(store.where, (db) => db.exec("DROP TRIGGER boom")))
        expect(yield* store.append(repeated)).toEqual({ inserted: 600, duplicates: 300 })
        expect(yield* store.append(batch.slice(500))).toEqual({ inserted: 0, duplicates: 100 })
        const report = yield* store.verify
        expect(report.problem).toBeNull()
        expect(report.records).toBe(600)
        const kept = yield* store.query({ limit: 1000 })
        expect(kept.map((r) => r.seq).sort((a, b) => a - b)).toEqual(
          Array.from({ length: 600 }, (_, i) => i + 1)
        )
      })
  )

  it.live("rows hold canonical JSON: the hash covers exactly the stored text", () =>
    Effect.gen(function* () {
      const { store } = yield* open("canonical")
      // Events that break the spec too: their schema_mismatch joins the hashed content.
      const records = [...events(all.length * 2), ...drifted(20, all.length * 2 + 1)].map(
        Record.fromEvent
      )
      yield* store.append(records)
      const rows = yield* Effect.promise(async () => {
        let found: Array<{ id: string; actor: string | null; targets: string; event: string }> = []
        await raw(store.where, (db) => {
          found = db
            .prepare(
              "SELECT id, actor, targets, event, schema_mismatch, prev_hash, hash FROM audit_records ORDER BY seq"
            )
            .all() as any
        })
        return found
      })
      expect(rows.length).toBe(records.length)
      rows.forEach((row: any, i) => {
        const record = records[i]!
        expect(row.id).toBe(record.id)
        expect(row.event).toBe(Chain.canonicalJson(record.event))
        expect(row.targets).toBe(Chain.canonicalJson(record.targets))
        expect(row.actor).toBe(record.actor === null ? null : Chain.canonicalJson(record.actor))
        // The content as the store puts it together from those texts is the content Chain hashes.
        const batch = prepareBatch([record])
        expect(canonicalContent(batch, 0)).toBe(Chain.canonicalContent(record))
        expect(row.hash).toBe(Chain.hash(row.prev_hash, record))
        expect(row.schema_mismatch).toBe(record.schema_mismatch ?? null)
      })
      expect(rows.filter((row: any) => row.schema_mismatch !== null)).toHaveLength(20)
    })
  )

  it.live("read-only (verify, query): creates, migrates and writes nothing", () =>
    Effect.gen(function* () {
      const records = (n: number, from = 1) => events(n, from).map(Record.fromEvent)
      const readOnly = (file: string) =>
        Effect.flip(Effect.scoped(SqliteStore.make({ path: file, readOnly: true })))
      // A missing file is not created, nor its folder.
      const missing = path.join(dir, "ro-missing", "audit.db")
      expect((yield* readOnly(missing)).message).toContain(`audit log ${missing}: opening failed`)
      expect(fs.existsSync(path.dirname(missing))).toBe(false)
      // A SQLite file that is not an audit log is not turned into one.
      const other = path.join(dir, "other.db")
      yield* Effect.promise(() => raw(other, (db) => db.exec("CREATE TABLE t (x)")))
      expect((yield* readOnly(other)).message).toBe(
        `SQLite audit log ${other}: opening failed: not an audit log (the file has no audit_meta table)`
      )
      const tables = new DatabaseSync(other)
      expect(tables.prepare("SELECT name FROM sqlite_master").all()).toEqual([{ name: "t" }])
      tables.close()
      // An older schema version is refused, not migrated.
      const older = path.join(dir, "ro-older", "audit.db")
      yield* Effect.scoped(SqliteStore.make({ path: older }))
      yield* Effect.promise(() =>
        raw(older, (db) =>
          db.exec("UPDATE audit_meta SET value = '0' WHERE key = 'schema_version'")
        )
      )
      expect((yield* readOnly(older)).message).toBe(
        `the audit log at ${older} has schema version 0, which this version of @workos-relay/sink-audit-log reads only after migrating it to version 2: start the relay with this audit-log sink once (it migrates the store when it opens it), then try again`
      )
      // A store of this version is read as it is: not switched to WAL, never written.
      const store = path.join(dir, "ro-store", "audit.db")
      yield* Effect.scoped(
        Effect.flatMap(SqliteStore.make({ path: store }), (s) => s.append(records(5)))
      )
      yield* Effect.promise(() => raw(store, (db) => db.exec("PRAGMA journal_mode = DELETE")))
      const reader = yield* SqliteStore.make({ path: store, readOnly: true })
      expect((yield* reader.verify).records).toBe(5)
      expect((yield* reader.query({})).length).toBe(5)
      expect((yield* Effect.flip(reader.append(records(1, 6)))).message).toBe(
        `SQLite audit log ${store}: opened read-only`
      )
      expect((yield* Effect.flip(reader.prune(new Date()))).message).toBe(
        `SQLite audit log ${store}: opened read-only`
      )
      const mode = new DatabaseSync(store)
      expect(mode.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "delete" })
      mode.close()
    })
  )

  it.live("refuses a store written by a newer schema version, with a clear error", () =>
    Effect.gen(function* () {
      const file = path.join(dir, "newer", "audit.db")
      yield* Effect.scoped(SqliteStore.make({ path: file }))
      yield* Effect.promise(() =>
        raw(file, (db) =>
          db.prepare("UPDATE audit_meta SET value = '99' WHERE key = 'schema_version'").run()
        )
      )
      const error = yield* Effect.flip(Effect.scoped(SqliteStore.make({ path: file })))
      expect(error._tag).toBe("SchemaTooNew")
      expect(error.message).toBe(
        `the audit log at ${file} has schema version 99, but this version of @workos-relay/sink-audit-log knows versions up to 2: upgrade @workos-relay/sink-audit-log to read or write it`
      )
    })
  )

  it.live("a failure inside the transaction leaves no partial batch", () =>
    Effect.gen(function* () {
      const { store } = yield* open("fail")
      const batch = events(10).map(Record.fromEvent)
      yield* store.append(batch.slice(0, 3))
      const file = store.where
      // A trigger that fails the 7th record of the next batch, after six rows went in.
      yield* Effect.promise(() =>
        raw(file, (db) =>
          db.exec(
            `CREATE TRIGGER boom BEFORE INSERT ON audit_records WHEN NEW.id = '${batch[8]!.id}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END`
          )
        )
      )
      const error = yield* Effect.flip(store.append(batch.slice(3)))
      expect(error.message).toContain("injected failure")
      expect((yield* store.query({ limit: 100 })).length).toBe(3)
      yield* Effect.promise(() => raw(file, (db) => db.exec("DROP TRIGGER boom")))
      expect(yield* store.append(batch.slice(3))).toEqual({ inserted: 7, duplicates: 0 })
      const report = yield* store.verify
      expect(report.problem).toBeNull()
      expect(report.records).toBe(10)
    })
  )
})
