/**
 * Signed digests prove completeness: every kind of tampering, each store, found by
 * `verify` with the digests, including those plain `verify` cannot see (a tail cut with
 * the head moved back, a prefix cut with the anchor moved forward, a wipe, a chain
 * rewritten from a record on). Retention with its signed note stays provable.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { PgClient } from "@effect/sql-pg"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Postgres from "@workos-relay/testing/Postgres"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Chain from "../src/Chain.ts"
import * as Config from "../src/Config.ts"
import * as Digest from "../src/Digest.ts"
import * as DigestVerify from "../src/DigestVerify.ts"
import { definition } from "../src/index.ts"
import { columns, toRow } from "../src/internal/Rows.ts"
import * as JsonlStore from "../src/JsonlStore.ts"
import * as PostgresStore from "../src/PostgresStore.ts"
import * as Record from "../src/Record.ts"
import * as Sink from "../src/Sink.ts"
import * as SqliteStore from "../src/SqliteStore.ts"
import type { Shape } from "../src/Store.ts"
import { events, start } from "./fixtures.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "audit-digests-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const keys = Digest.generateKeyPair()
const privateKey = Digest.privateKeyFrom(keys.privateKey)
const publicKey = Digest.publicKeyFrom(keys.publicKey)

/** What a store's tampering needs: its records rewritten wholesale, with anchor and head. */
interface Kind {
  readonly name: string
  readonly open: (where: string) => Effect.Effect<Shape, unknown, import("effect/Scope").Scope>
  readonly openReadOnly: (
    where: string
  ) => Effect.Effect<Shape, unknown, import("effect/Scope").Scope>
  /** Replaces every record, the anchor and the head (what a writer of the files can do). */
  readonly rewrite: (
    where: string,
    records: ReadonlyArray<Record.StoredRecord>,
    anchor: Chain.Anchor,
    head: Chain.Head
  ) => void | Promise<void>
  /** Before a test: an empty store (Postgres: one database for every test). */
  readonly reset?: () => Promise<void>
  /** JSONL only: adds a key to record `seq`'s line. */
  readonly addKey?: (where: string, seq: number) => void
}

const sqlite: Kind = {
  name: "SQLite",
  open: (file) => SqliteStore.make({ path: file }),
  openReadOnly: (file) => SqliteStore.make({ path: file, readOnly: true }),
  rewrite: (file, records, anchor, head) => {
    const db = new DatabaseSync(file)
    try {
      db.exec("BEGIN IMMEDIATE")
      db.exec("DELETE FROM audit_records")
      const insert = db.prepare(
        `INSERT INTO audit_records (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`
      )
      for (const r of records) {
        const row = toRow(r)
        insert.run(...columns.map((c) => (row as any)[c] as string | number | null))
      }
      db.prepare(
        "UPDATE audit_chain SET anchor_seq = ?, anchor_hash = ?, head_seq = ?, head_hash = ?, head_count = ? WHERE id = 1"
      ).run(anchor.seq, anchor.hash, head.seq, head.hash, head.count)
      db.exec("COMMIT")
    } finally {
      db.close()
    }
  }
}

const jsonl: Kind = {
  name: "JSONL",
  open: (directory) => JsonlStore.make({ directory }),
  openReadOnly: (directory) => JsonlStore.make({ directory, readOnly: true }),
  rewrite: (directory, records, anchor, head) => {
    for (const n of fs.readdirSync(directory))
      if (n.endsWith(".jsonl")) fs.rmSync(path.join(directory, n))
    fs.writeFileSync(
      path.join(directory, "2026-01-01.jsonl"),
      records.map((r) => `${JSON.stringify({ ...r, commit: true })}\n`).join("")
    )
    const metaFile = path.join(directory, "meta.json")
    fs.writeFileSync(
      metaFile,
      JSON.stringify({ ...JSON.parse(fs.readFileSync(metaFile, "utf8")), anchor })
    )
    fs.writeFileSync(path.join(directory, "head.json"), JSON.stringify(head))
  },
  addKey: (directory, seq) => {
    const file = fs.readdirSync(directory).find((n) => n.endsWith(".jsonl"))!
    const lines = fs.readFileSync(path.join(directory, file), "utf8").trimEnd().split("\n")
    const i = lines.findIndex((l) => JSON.parse(l).seq === seq)
    lines[i] = JSON.stringify({ ...JSON.parse(lines[i]!), note: "approved" })
    fs.writeFileSync(path.join(directory, file), `${lines.join("\n")}\n`)
  }
}

const headOf = (records: ReadonlyArray<Record.StoredRecord>, anchor: Chain.Anchor): Chain.Head => {
  const last = records.at(-1)
  return last === undefined
    ? { seq: anchor.seq, hash: anchor.hash, count: 0 }
    : { seq: last.seq, hash: last.hash, count: records.length }
}

/** 30 records in three batches, a signed digest after each; returns the records in order. */
const setUp = (kind: Kind, where: string, digests: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      if (kind.reset !== undefined) yield* Effect.promise(kind.reset)
      const store = yield* kind.open(where)
      const writer = Digest.writer(digests, privateKey)
      for (let b = 0; b < 3; b++) {
        yield* store.append(events(10, 1 + b * 10).map(Record.fromEvent))
        writer.write("head", (yield* store.head)!)
      }
      return [...(yield* store.query({ limit: 1000 }))].reverse()
    })
  )

const check = (kind: Kind, where: string, digests: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* kind.openReadOnly(where)
      return yield* DigestVerify.verify(store, Digest.readAll(digests), publicKey)
    })
  )

type Tampering = (
  kind: Kind,
  where: string,
  records: ReadonlyArray<Record.StoredRecord>,
  digests: string
) => void | Promise<void>

const genesis = Chain.genesisAnchor
const relink = (
  after: Chain.Anchor,
  records: ReadonlyArray<Record.AuditRecord>
): ReadonlyArray<Record.StoredRecord> => Chain.link(after, records)

/** The records with seq 1, 2, 3, ... in list order (seq is not hashed). */
const renumber = (records: ReadonlyArray<Record.StoredRecord>) =>
  records.map((r, i) => ({ ...r, seq: i + 1 }))

/** [name, tampering, kind of problem with digests, plain verify sees it] */
const tamperings: ReadonlyArray<
  readonly [string, Tampering, DigestVerify.DigestProblemKind, boolean]
> = [
  [
    "edit a record",
    (k, w, rs) =>
      k.rewrite(
        w,
        rs.map((r) => (r.seq === 7 ? { ...r, ip_address: "6.6.6.6" } : r)),
        genesis,
        headOf(rs, genesis)
      ),
    "chain",
    true
  ],
  [
    "delete a record",
    (k, w, rs) =>
      k.rewrite(
        w,
        rs.filter((r) => r.seq !== 12),
        genesis,
        headOf(rs, genesis)
      ),
    "chain",
    true
  ],
  [
    "reorder records",
    (k, w, rs) => {
      const swapped = [...rs]
      ;[swapped[4], swapped[5]] = [swapped[5]!, swapped[4]!]
      // Each in the other's place (SQL stores order by seq).
      return k.rewrite(w, renumber(swapped), genesis, headOf(rs, genesis))
    },
    "chain",
    true
  ],
  [
    "insert a record",
    (k, w, rs) => {
      const forged = Record.fromEvent({ ...events(1, 99)[0]!, id: "event_forged" })
      const prev = rs[9]!
      const inserted = {
        ...forged,
        seq: 11,
        prev_hash: prev.hash,
        hash: Chain.hash(prev.hash, forged)
      }
      return k.rewrite(
        w,
        renumber([...rs.slice(0, 10), inserted, ...rs.slice(10)]),
        genesis,
        headOf(rs, genesis)
      )
    },
    "chain",
    true
  ],
  [
    "truncate the tail, head moved back",
    (k, w, rs) => k.rewrite(w, rs.slice(0, 25), genesis, headOf(rs.slice(0, 25), genesis)),
    "truncated",
    false
  ],
  [
    "cut the prefix, anchor moved forward",
    (k, w, rs) => {
      const anchor = { seq: rs[4]!.seq, hash: rs[4]!.hash }
      return k.rewrite(w, rs.slice(5), anchor, { ...headOf(rs, genesis), count: 25 })
    },
    "prefix-deleted",
    false
  ],
  ["wipe every record", (k, w) => k.rewrite(w, [], genesis, headOf([], genesis)), "wiped", false],
  [
    "rewrite the chain from an edited record on",
    (k, w, rs) => {
      const edited = rs.map((r) => (r.seq === 3 ? { ...r, ip_address: "6.6.6.6" } : r))
      const relinked = [
        ...rs.slice(0, 2),
        ...relink({ seq: 2, hash: rs[1]!.hash }, edited.slice(2))
      ]
      return k.rewrite(w, relinked, genesis, headOf(relinked, genesis))
    },
    "rewritten",
    false
  ],
  [
    "forge a digest (move its head back)",
    (_k, _w, rs, digests) => {
      const file = Digest.readAll(digests).at(-1)!.file
      const d = JSON.parse(fs.readFileSync(file, "utf8"))
      fs.writeFileSync(file, JSON.stringify({ ...d, seq: rs[24]!.seq, hash: rs[24]!.hash }))
    },
    "signature",
    false
  ]
]

let n = 0
let database: { readonly url: string; readonly stop: () => Promise<void> } | undefined
beforeAll(async () => {
  database = await Postgres.start()
}, 120_000)
afterAll(() => database?.stop())

const pgUrl = () => Redacted.make(database!.url)

/** Runs raw SQL on the test database, as someone with write access could. */
const raw = (statements: ReadonlyArray<readonly [string, ReadonlyArray<unknown>?]>) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const sql = yield* PgClient.PgClient
      yield* sql.withTransaction(
        Effect.forEach(statements, ([text, params]) => sql.unsafe(text, params ?? []), {
          discard: true
        })
      )
    }).pipe(Effect.provide(PgClient.layer({ url: pgUrl(), maxConnections: 1 })))
  )

const postgres: Kind = {
  name: "Postgres",
  reset: () => raw([["DROP TABLE IF EXISTS audit_records, audit_chain, audit_meta"]]),
  open: () => PostgresStore.makeFromUrl({ url: pgUrl() }),
  openReadOnly: () => PostgresStore.makeFromUrl({ url: pgUrl(), readOnly: true }),
  rewrite: (_where, records, anchor, head) =>
    raw([
      ["DELETE FROM audit_records"],
      ...records.map((r) => {
        const row = toRow(r)
        return [
          `INSERT INTO audit_records (${columns.join(", ")}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")})`,
          columns.map((c) => row[c])
        ] as const
      }),
      [
        "UPDATE audit_chain SET anchor_seq = $1, anchor_hash = $2, head_seq = $3, head_hash = $4, head_count = $5 WHERE id = 1",
        [anchor.seq, anchor.hash, head.seq, head.hash, head.count]
      ]
    ])
}

for (const kind of [sqlite, jsonl, postgres]) {
  describe(`${kind.name}: tampering found with --digests`, () => {
    const cases = [
      ...tamperings,
      ...(kind.addKey === undefined
        ? []
        : ([
            ["add a key to a line", (k: Kind, w: string) => k.addKey!(w, 8), "chain", true]
          ] as const))
    ]
    for (const [name, tamper, expected, plainSees] of cases) {
      it.live(name, () =>
        Effect.gen(function* () {
          const where = path.join(root, `${kind.name}-${++n}${kind === sqlite ? ".db" : ""}`)
          const digests = path.join(root, `digests-${n}`)
          const records = yield* setUp(kind, where, digests)
          expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1))
          // Before: all holds.
          expect((yield* check(kind, where, digests)).problems).toEqual([])
          yield* Effect.promise(async () => tamper(kind, where, records, digests))
          const report = yield* check(kind, where, digests)
          expect(report.problems.map((p) => p.kind)).toContain(expected)
          expect(report.chain.problem !== null).toBe(plainSees)
          if (expected !== "chain" && expected !== "signature") {
            // Named with the digest it contradicts.
            const found = report.problems.find((p) => p.kind === expected)!
            expect(found.digest).not.toBeNull()
            expect(found.message).toContain(`digest ${found.digest}`)
          }
        })
      )
    }
  })
}

describe("retention with digests", () => {
  it.live(
    "a cut made by retention is signed and stays provable; a further cut without a note is not",
    () =>
      Effect.gen(function* () {
        const file = path.join(root, "retention.db")
        const digests = path.join(root, "retention-digests")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const store = yield* SqliteStore.make({ path: file })
            yield* store.append(events(50).map(Record.fromEvent))
            const keeper = yield* Sink.keepDigests(store, {
              directory: digests,
              privateKey: Redacted.make(keys.privateKey),
              interval: "1 hour"
            })
            yield* keeper.head
            // Retention as the sink runs it, told to report its pass.
            const passed = yield* Effect.promise(
              () =>
                new Promise<{ deleted: number }>((resolve) => {
                  Effect.runFork(
                    Effect.scoped(
                      Sink.keepRetention(store, Config.parseRetention("1 day")!, {
                        digests: keeper,
                        onPass: resolve
                      }).pipe(Effect.andThen(Effect.never))
                    )
                  )
                })
            )
            expect(passed.deleted).toBe(50)
            yield* store.append(events(10, 51).map(Record.fromEvent))
          })
        )
        const all = Digest.readAll(digests).map((d) => d.digest)
        expect(all.map((d) => d.kind)).toEqual(["head", "retention", "head"])
        expect(all[1]!.removed).toEqual({ count: 50, from: { seq: 0, hash: Chain.genesis } })
        const report = yield* check(sqlite, file, digests)
        expect(report.problems).toEqual([])
        // Now cut five more records by hand, anchor moved: no note covers it.
        const kept = yield* Effect.scoped(
          Effect.gen(function* () {
            const s = yield* SqliteStore.make({ path: file, readOnly: true })
            return [...(yield* s.query({ limit: 100 }))].reverse()
          })
        )
        const anchor = { seq: kept[4]!.seq, hash: kept[4]!.hash }
        sqlite.rewrite(file, kept.slice(5), anchor, { ...headOf(kept, genesis), count: 5 })
        const after = yield* check(sqlite, file, digests)
        expect(after.chain.problem).toBeNull()
        expect(after.problems.map((p) => p.kind)).toContain("prefix-deleted")
      })
  )
})

/** One retention pass as the sink runs it; resolves with its result or its failure's message. */
const retentionPass = (store: Shape, keeper: Sink.DigestKeeper) =>
  Effect.callback<{ deleted: number } | string>((resume) => {
    const fiber = Effect.runFork(
      Effect.scoped(
        Sink.keepRetention(store, Config.parseRetention("1 day")!, {
          digests: keeper,
          onPass: (r) => resume(Effect.succeed(r)),
          onFailure: (message) => resume(Effect.succeed(message))
        }).pipe(Effect.andThen(Effect.never))
      )
    )
    return Effect.sync(() => fiber.interruptUnsafe())
  })

const keeperOf = (store: Shape, digests: string) =>
  Sink.keepDigests(store, {
    directory: digests,
    privateKey: Redacted.make(keys.privateKey),
    interval: "1 hour"
  })

const countOf = (file: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const s = yield* SqliteStore.make({ path: file, readOnly: true })
      return { records: (yield* s.query({ limit: 1000 })).length, state: (yield* s.head)! }
    })
  )

describe("retention signs its note before it cuts", () => {
  it.live("the note cannot be written: nothing is deleted, and the next pass cuts", () =>
    Effect.gen(function* () {
      const file = path.join(root, "note-fails.db")
      const digests = path.join(root, "note-fails-digests")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const store = yield* SqliteStore.make({ path: file })
          yield* store.append(events(50).map(Record.fromEvent))
          const keeper = yield* keeperOf(store, digests)
          // Digest 2 (the note) cannot be written: its temp file's name is a folder.
          const blocker = path.join(digests, "digest-0000000002.json.tmp")
          fs.mkdirSync(blocker)
          const failed = yield* retentionPass(store, keeper)
          expect(typeof failed).toBe("string")
          expect(failed).toContain("retention note")
          expect(failed).toContain("nothing was deleted")
          expect(failed).toContain(digests)
          expect((yield* store.query({ limit: 1000 })).length).toBe(50)
          expect((yield* store.head)!.anchor).toEqual(genesis)
          expect(Digest.readAll(digests).map((d) => d.digest.kind)).toEqual(["head"])
          const report = yield* check(sqlite, file, digests)
          expect(report.problems).toEqual([])
          // Space again: the next pass signs the note, then cuts.
          fs.rmdirSync(blocker)
          expect(yield* retentionPass(store, keeper)).toEqual({
            deleted: 50,
            anchor: expect.objectContaining({ seq: 50 })
          })
        })
      )
      expect((yield* countOf(file)).records).toBe(0)
      expect(Digest.readAll(digests).map((d) => d.digest.kind)).toEqual(["head", "retention"])
      expect((yield* check(sqlite, file, digests)).problems).toEqual([])
    })
  )

  it.live("a crash after the note: verify is OK, the next pass makes the cut", () =>
    Effect.gen(function* () {
      const file = path.join(root, "note-then-crash.db")
      const digests = path.join(root, "note-then-crash-digests")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const store = yield* SqliteStore.make({ path: file })
          yield* store.append(events(50).map(Record.fromEvent))
          const keeper = yield* keeperOf(store, digests)
          // The process stops (never returns) when it comes to delete, after the note.
          let reached: () => void = () => {}
          const deleting = {
            promise: new Promise<void>((r) => (reached = r)),
            resolve: () => reached()
          }
          const crashing: Shape = {
            ...store,
            prune: (before, options) =>
              options?.plan === true
                ? store.prune(before, options)
                : Effect.sync(() => deleting.resolve()).pipe(Effect.andThen(Effect.never))
          }
          const fiber = Effect.runFork(
            Effect.scoped(
              Sink.keepRetention(crashing, Config.parseRetention("1 day")!, {
                digests: keeper
              }).pipe(Effect.andThen(Effect.never))
            )
          )
          yield* Effect.promise(() => deleting.promise)
          fiber.interruptUnsafe()
        })
      )
      const notes = Digest.readAll(digests).map((d) => d.digest)
      expect(notes.map((d) => d.kind)).toEqual(["head", "retention", "head"])
      expect(notes[1]!.anchor.seq).toBe(50)
      expect(notes[1]!.removed).toEqual({ count: 50, from: genesis })
      const pending = yield* countOf(file)
      expect(pending.records).toBe(50)
      expect(pending.state.anchor).toEqual(genesis)
      // The announced cut is not made yet: that is no finding.
      const before = yield* check(sqlite, file, digests)
      expect(before.chain.problem).toBeNull()
      expect(before.problems).toEqual([])

      // A cut by hand of 5 records while the note is pending is still found.
      const all = [
        ...(yield* Effect.scoped(
          Effect.gen(function* () {
            const s = yield* SqliteStore.make({ path: file, readOnly: true })
            return yield* s.query({ limit: 1000 })
          })
        ))
      ].reverse()
      const copy = path.join(root, "note-then-crash-cut.db")
      fs.copyFileSync(file, copy)
      sqlite.rewrite(
        copy,
        all.slice(5),
        { seq: all[4]!.seq, hash: all[4]!.hash },
        { ...headOf(all, genesis), count: 45 }
      )
      const cut = yield* check(sqlite, copy, digests)
      expect(cut.problems.map((p) => p.kind)).toContain("prefix-deleted")

      // Restarted: the next pass signs a new note and makes the cut.
      yield* Effect.scoped(
        Effect.gen(function* () {
          const store = yield* SqliteStore.make({ path: file })
          const keeper = yield* keeperOf(store, digests)
          expect(yield* retentionPass(store, keeper)).toEqual({
            deleted: 50,
            anchor: expect.objectContaining({ seq: 50 })
          })
          yield* store.append(events(10, 51).map(Record.fromEvent))
        })
      )
      const done = yield* countOf(file)
      expect(done.records).toBe(10)
      expect(done.state.anchor.seq).toBe(50)
      expect(Digest.readAll(digests).map((d) => d.digest.kind)).toEqual([
        "head",
        "retention",
        "head",
        "retention",
        "head"
      ])
      const after = yield* check(sqlite, file, digests)
      expect(after.chain.problem).toBeNull()
      expect(after.problems).toEqual([])
    })
  )
})

describe("digests config", () => {
  const decode = (digests: unknown) =>
    Schema.decodeUnknownResult(Config.Config)({ path: "x.db", digests }, { errors: "all" })
  it("needs exactly one key, an Ed25519 one, and a positive interval", () => {
    expect(String((decode({ directory: "d" }) as any).failure)).toContain(
      "digests needs exactly one of privateKey and privateKeyFile"
    )
    expect(String((decode({ directory: "d", privateKey: "not a key" }) as any).failure)).toContain(
      "privateKey must be an Ed25519 private key in PEM"
    )
    expect(
      String(
        (decode({ directory: "d", privateKeyFile: "k.pem", interval: "often" }) as any).failure
      )
    ).toContain('interval must be a positive duration such as "1 hour" or "15m", got "often"')
    const ok = decode({ directory: "d", privateKey: keys.privateKey }) as any
    expect(ok.success.digests.interval).toBe("1 hour")
  })
})

void start

describe("the sink signs digests", () => {
  it.live("at start and at shutdown, from a key file; verify with them holds", () =>
    Effect.gen(function* () {
      const folder = path.join(root, "sink")
      fs.mkdirSync(folder)
      fs.writeFileSync(path.join(folder, "key.pem"), keys.privateKey, { mode: 0o600 })
      // Relative paths are relative to the config file's folder.
      const config = Schema.decodeUnknownSync(definition.config)({
        path: "audit.db",
        digests: { directory: "digests", privateKeyFile: "key.pem" }
      })
      yield* Effect.scoped(
        Effect.gen(function* () {
          const sink = yield* definition.make(config, { name: "audit", directory: folder })
          yield* sink.deliver(events(25))
        })
      )
      const digests = Digest.readAll(path.join(folder, "digests")).map((d) => d.digest)
      // The one at start (empty store) and the one at shutdown (after the 25).
      expect(digests.map((d) => [d.n, d.seq])).toEqual([
        [1, 0],
        [2, 25]
      ])
      const report = yield* check(
        sqlite,
        path.join(folder, "audit.db"),
        path.join(folder, "digests")
      )
      expect(report.problems).toEqual([])
      expect(report.digests).toBe(2)
      // A key file that is not a key stops the sink at start, saying so.
      fs.writeFileSync(path.join(folder, "bad.pem"), "not a key")
      const bad = yield* Effect.flip(
        Effect.scoped(
          definition.make(
            Schema.decodeUnknownSync(definition.config)({
              path: "audit.db",
              digests: { directory: "digests", privateKeyFile: "bad.pem" }
            }),
            { name: "audit", directory: folder }
          )
        )
      )
      expect(bad.reason).toContain(
        `digests: privateKeyFile ${path.join(folder, "bad.pem")}: not a PEM private key`
      )
    })
  )
})
