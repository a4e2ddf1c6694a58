import { PgClient } from "@effect/sql-pg"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Postgres from "@workos-relay/testing/Postgres"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { columns, toRow } from "../src/internal/Rows.ts"
import * as PostgresStore from "../src/PostgresStore.ts"
import * as Record from "../src/Record.ts"
import { events } from "./fixtures.ts"
import { type Opened, retentionSuite, sqlSuite, storeSuite } from "./storeSuite.ts"

let database: { readonly url: string; readonly stop: () => Promise<void> }
beforeAll(async () => {
  database = await Postgres.start()
}, 120_000)
afterAll(() => database?.stop())

const url = () => Redacted.make(database.url)

/** Runs raw SQL on the test database, as someone with write access could. */
const raw = (statements: ReadonlyArray<readonly [string, ReadonlyArray<unknown>?]>) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const sql = yield* PgClient.PgClient
      for (const [text, params] of statements) yield* sql.unsafe(text, params ?? [])
    }).pipe(Effect.provide(PgClient.layer({ url: url(), maxConnections: 1 })))
  )

const open = (_key: string) =>
  Effect.gen(function* () {
    yield* Effect.promise(() =>
      raw([["DROP TABLE IF EXISTS audit_records, audit_chain, audit_meta"]])
    )
    const store = yield* PostgresStore.makeFromUrl({ url: url() })
    const opened: Opened = {
      store,
      reopen: PostgresStore.makeFromUrl({ url: url() }),
      tamper: {
        modify: (seq) =>
          raw([["UPDATE audit_records SET ip_address = '6.6.6.6' WHERE seq = $1", [seq]]]),
        remove: (seq) => raw([["DELETE FROM audit_records WHERE seq = $1", [seq]]]),
        insertAfter: (seq, record) => {
          const row = toRow(record)
          return raw([
            ["UPDATE audit_records SET seq = seq + 1000000 WHERE seq > $1", [seq]],
            ["UPDATE audit_records SET seq = seq - 999999 WHERE seq > 1000000"],
            [
              `INSERT INTO audit_records (${columns.join(", ")}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")})`,
              columns.map((c) => row[c])
            ]
          ])
        },
        swap: (seq) =>
          raw([
            ["UPDATE audit_records SET seq = -1 WHERE seq = $1", [seq]],
            ["UPDATE audit_records SET seq = $1 WHERE seq = $2", [seq, seq + 1]],
            ["UPDATE audit_records SET seq = $1 WHERE seq = -1", [seq + 1]]
          ]),
        setActorColumns: (seq, id, name) =>
          raw([
            [
              "UPDATE audit_records SET actor_id = $1, actor_name = $2 WHERE seq = $3",
              [id, name, seq]
            ]
          ]),
        deleteChainRow: () => raw([["DELETE FROM audit_chain"]]),
        setMismatch: (seq, value) =>
          raw([["UPDATE audit_records SET schema_mismatch = $1 WHERE seq = $2", [value, seq]]]),
        downgrade: () =>
          raw([
            ["DROP INDEX audit_records_mismatch"],
            ["ALTER TABLE audit_records DROP COLUMN schema_mismatch"],
            ["UPDATE audit_meta SET value = '1' WHERE key = 'schema_version'"]
          ])
      }
    }
    return opened
  })

describe("PostgresStore", () => {
  storeSuite(open)
  retentionSuite(open)
  sqlSuite(open)

  it.live("never shows the password in where it is", () =>
    Effect.sync(() => {
      expect(
        PostgresStore.describe(Redacted.make("postgres://u:secret@db.example:5432/audit"))
      ).toBe("postgres://db.example:5432/audit")
    })
  )

  it.live("refuses a database written by a newer schema version", () =>
    Effect.gen(function* () {
      yield* Effect.scoped(open("newer"))
      yield* Effect.promise(() =>
        raw([["UPDATE audit_meta SET value = '7' WHERE key = 'schema_version'"]])
      )
      const error = yield* Effect.flip(Effect.scoped(PostgresStore.makeFromUrl({ url: url() })))
      expect(error._tag).toBe("SchemaTooNew")
      expect(error.message).toContain(
        "has schema version 7, but this version of @workos-relay/sink-audit-log knows versions up to 2"
      )
    })
  )

  it.live("read-only (verify, query): creates and migrates nothing, refuses writes", () =>
    Effect.gen(function* () {
      yield* Effect.promise(() =>
        raw([["DROP TABLE IF EXISTS audit_records, audit_chain, audit_meta"]])
      )
      const where = PostgresStore.describe(url())
      const empty = yield* Effect.flip(
        Effect.scoped(PostgresStore.makeFromUrl({ url: url(), readOnly: true }))
      )
      expect(empty.message).toBe(
        `Postgres audit log ${where}: opening failed: not an audit log (the database has no audit_meta table)`
      )
      // (The sink's open makes the tables instead.)
      const { store } = yield* open("read-only")
      yield* store.append(events(4).map(Record.fromEvent))
      const reader = yield* PostgresStore.makeFromUrl({ url: url(), readOnly: true })
      expect((yield* reader.verify).records).toBe(4)
      expect((yield* Effect.flip(reader.append(events(1, 5).map(Record.fromEvent)))).message).toBe(
        `Postgres audit log ${where}: opened read-only`
      )
      yield* Effect.promise(() =>
        raw([["UPDATE audit_meta SET value = '0' WHERE key = 'schema_version'"]])
      )
      const older = yield* Effect.flip(
        Effect.scoped(PostgresStore.makeFromUrl({ url: url(), readOnly: true }))
      )
      expect(older.message).toContain(`the audit log at ${where} has schema version 0, which`)
    })
  )

  it.live("a failure inside the transaction leaves no partial batch", () =>
    Effect.gen(function* () {
      const { store } = yield* open("fail")
      const batch = events(1200).map(Record.fromEvent)
      yield* store.append(batch.slice(0, 3))
      // Fails a record in the third chunk of 500 rows: two INSERTs went through before it.
      yield* Effect.promise(() =>
        raw([
          [
            `CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN IF NEW.id = '${batch[1100]!.id}' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`
          ],
          [
            "CREATE TRIGGER boom BEFORE INSERT ON audit_records FOR EACH ROW EXECUTE FUNCTION boom()"
          ]
        ])
      )
      const error = yield* Effect.flip(store.append(batch.slice(3)))
      expect(error.message).toContain("injected failure")
      expect((yield* store.query({ limit: 5000 })).length).toBe(3)
      yield* Effect.promise(() =>
        raw([["DROP TRIGGER boom ON audit_records"], ["DROP FUNCTION boom"]])
      )
      expect(yield* store.append(batch.slice(3))).toEqual({ inserted: 1197, duplicates: 0 })
      const report = yield* store.verify
      expect(report.problem).toBeNull()
      expect(report.records).toBe(1200)
    })
  )

  it.live("concurrent writers take turns and keep one chain", () =>
    Effect.gen(function* () {
      const { store, reopen } = yield* open("concurrent")
      const other = yield* reopen
      const batches = Array.from({ length: 8 }, (_, i) =>
        events(50, 1 + i * 40).map(Record.fromEvent)
      )
      yield* Effect.all(
        batches.map((b, i) => (i % 2 === 0 ? store : other).append(b)),
        { concurrency: "unbounded" }
      )
      const report = yield* store.verify
      expect(report.problem).toBeNull()
      expect(report.records).toBe(330)
    })
  )

  it.live("verify while another writer appends sees one consistent snapshot", () =>
    Effect.gen(function* () {
      const { store, reopen } = yield* open("snapshot")
      const writer = yield* reopen
      yield* store.append(events(600).map(Record.fromEvent))
      const reports = yield* Effect.all(
        [
          Effect.forEach([0, 1, 2, 3, 4, 5], (k) =>
            writer.append(events(100, 601 + k * 100).map(Record.fromEvent))
          ),
          Effect.forEach([0, 1, 2, 3, 4, 5], () => store.verify)
        ],
        { concurrency: "unbounded" }
      )
      for (const report of reports[1]) expect(report.problem).toBeNull()
      expect((yield* store.verify).records).toBe(1200)
    })
  )
})
