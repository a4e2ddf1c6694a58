import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { NodeServices } from "@effect/platform-node"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Sink } from "@workos-relay/core"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import { Command } from "effect/cli"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { onTestFinished } from "vitest"
import * as Cli from "../src/Cli.ts"
import * as Digest from "../src/Digest.ts"
import * as Inspect from "../src/Inspect.ts"
import * as JsonlStore from "../src/JsonlStore.ts"
import * as Record from "../src/Record.ts"
import * as SqliteStore from "../src/SqliteStore.ts"
import { drifted, events, start } from "./fixtures.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "audit-cli-"))
const db = path.join(dir, "audit.db")
const jsonl = path.join(dir, "jsonl")

beforeAll(() =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const records = events(120).map(Record.fromEvent)
        yield* (yield* SqliteStore.make({ path: db })).append(records)
        yield* (yield* JsonlStore.make({ directory: jsonl })).append(records)
      })
    )
  )
)
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

/** Runs `workos-relay audit ...args` in process; what it printed, and its exit code. */
const run = (...args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const out: Array<string> = []
    const err: Array<string> = []
    const console: Console.Console = {
      ...globalThis.console,
      log: (...xs: ReadonlyArray<unknown>) => void out.push(xs.join(" ")),
      info: (...xs: ReadonlyArray<unknown>) => void out.push(xs.join(" ")),
      error: (...xs: ReadonlyArray<unknown>) => void err.push(xs.join(" ")),
      warn: (...xs: ReadonlyArray<unknown>) => void err.push(xs.join(" "))
    }
    const exit = yield* Command.runWith(Cli.audit, { version: "0.0.0-test" })(args).pipe(
      Effect.provide(NodeServices.layer),
      Effect.provideService(Console.Console, console),
      Effect.exit
    )
    const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
    return {
      out: out.join("\n"),
      err: err.join("\n"),
      code: Exit.isSuccess(exit) ? 0 : Cli.exitCode(error),
      error: error as { message?: string } | undefined
    }
  })

describe("audit verify", () => {
  it.live("says OK and exits 0 for an intact log, for SQLite and JSONL", () =>
    Effect.gen(function* () {
      const sqlite = yield* run("verify", "--sqlite", db)
      expect(sqlite.code).toBe(0)
      expect(sqlite.out).toContain(`audit log ${db}: OK: 120 record(s) verified from the start`)
      const files = yield* run("verify", "--jsonl", jsonl, "--format", "json")
      expect(files.code).toBe(0)
      expect(JSON.parse(files.out)).toMatchObject({ ok: true, records: 120, problem: null })
    })
  )

  it.live("names the first tampered record and exits 1", () =>
    Effect.gen(function* () {
      const copy = path.join(dir, "tampered.db")
      fs.copyFileSync(db, copy)
      const raw = new DatabaseSync(copy)
      raw.prepare("UPDATE audit_records SET organization_id = 'org_evil' WHERE seq = 42").run()
      raw.close()
      const result = yield* run("verify", "--sqlite", copy)
      expect(result.code).toBe(1)
      expect(result.err).toContain(
        "FAILED (modified): record #42 (event event_000042) was modified"
      )
      expect(result.error?.message).toContain("failed verification")
    })
  )

  it.live("names a record whose actor query columns were changed", () =>
    Effect.gen(function* () {
      const copy = path.join(dir, "actor-columns.db")
      fs.copyFileSync(db, copy)
      const raw = new DatabaseSync(copy)
      raw.exec(
        "UPDATE audit_records SET actor_name = 'Mallory', actor_id = 'user_mallory' WHERE seq = 42"
      )
      raw.close()
      const result = yield* run("verify", "--sqlite", copy)
      expect(result.code).toBe(1)
      expect(result.err).toContain(
        `audit log ${copy}: FAILED (modified): record #42 (event event_000042) was modified: its actor_id column says "user_mallory" but its actor says`
      )
    })
  )

  it.live("says FAILED when the chain's row is missing, in text and JSON", () =>
    Effect.gen(function* () {
      const copy = path.join(dir, "no-chain-row.db")
      fs.copyFileSync(db, copy)
      const raw = new DatabaseSync(copy)
      raw.exec("DELETE FROM audit_chain")
      raw.close()
      const text = yield* run("verify", "--sqlite", copy)
      expect(text.code).toBe(1)
      expect(text.err).toBe(
        `audit log ${copy}: FAILED (deleted): the chain's head row is missing (table audit_chain has no row): the store was damaged or tampered with; restore it from a backup`
      )
      const json = yield* run("verify", "--sqlite", copy, "--format", "json")
      expect(json.code).toBe(1)
      expect(JSON.parse(json.out)).toMatchObject({
        ok: false,
        records: 0,
        problem: { kind: "deleted", seq: null }
      })
    })
  )

  it.live("reads a JSONL folder without repairing it: a missing head.json is a finding", () =>
    Effect.gen(function* () {
      const copy = path.join(dir, "jsonl-no-head")
      fs.cpSync(jsonl, copy, { recursive: true })
      fs.rmSync(path.join(copy, "head.json"))
      const result = yield* run("verify", "--jsonl", copy)
      expect(result.code).toBe(1)
      expect(result.err).toContain(`FAILED (deleted): ${path.join(copy, "head.json")} is missing`)
      expect(fs.existsSync(path.join(copy, "head.json"))).toBe(false)
      expect((yield* run("query", "--jsonl", copy)).code).toBe(0)
      expect(fs.existsSync(path.join(copy, "head.json"))).toBe(false)
    })
  )

  it.live(
    "says how many JSONL records came after the head it read (a writer appending meanwhile)",
    () =>
      Effect.gen(function* () {
        const copy = path.join(dir, "jsonl-appending")
        fs.cpSync(jsonl, copy, { recursive: true })
        const head = JSON.parse(fs.readFileSync(path.join(copy, "head.json"), "utf8"))
        yield* Effect.scoped(
          Effect.flatMap(JsonlStore.make({ directory: copy }), (store) =>
            store.append(events(2, 121).map(Record.fromEvent))
          )
        )
        fs.writeFileSync(path.join(copy, "head.json"), JSON.stringify(head))
        const result = yield* run("verify", "--jsonl", copy)
        expect(result.code).toBe(0)
        expect(result.out).toBe(
          `audit log ${copy}: OK: 120 record(s) verified from the start; head hash ${head.hash}; 2 newer record(s) after that head (appended meanwhile) not checked`
        )
      })
  )

  it.live("exits 2 on bad usage: two stores, --sink without --config, a missing file", () =>
    Effect.gen(function* () {
      const both = yield* run("verify", "--sqlite", db, "--jsonl", jsonl)
      expect(both.code).toBe(2)
      expect(both.error?.message).toBe("choose one store: --sqlite and --jsonl were both given")
      expect((yield* run("verify", "--sink", "audit")).code).toBe(2)
      const missing = yield* run("verify", "--sqlite", path.join(dir, "nope.db"))
      expect(missing.code).toBe(2)
      expect(missing.error?.message).toContain("no audit log at")
      expect(fs.existsSync(path.join(dir, "nope.db"))).toBe(false)
      expect((yield* run("verify", "--format", "xml")).code).toBe(2)
      expect((yield* run("verify", "--no-such-flag")).code).toBe(2)
    })
  )

  it.live("reads the store from a relay config file's sink entry, with environment variables", () =>
    Effect.gen(function* () {
      const config = path.join(dir, "relay.yaml")
      fs.writeFileSync(
        config,
        [
          "sinks:",
          "  slack:",
          "    type: slack",
          "    token: x",
          "  audit:",
          "    type: audit-log",
          "    events: ['*']",
          "    batch: { maxEvents: 100 }",
          // biome-ignore lint/suspicious/noTemplateCurlyInString: the config file's own ${VAR} syntax
          "    path: ${AUDIT_TEST_DB}",
          "    retention: 400 days",
          "  files:",
          "    type: audit-log",
          "    store: jsonl",
          `    directory: ${jsonl}`,
          "  broken:",
          "    type: audit-log",
          "    store: jsonl",
          "    gzip: maybe"
        ].join("\n")
      )
      // Put back as it was however the test ends.
      const saved = process.env.AUDIT_TEST_DB
      onTestFinished(() => {
        if (saved === undefined) delete process.env.AUDIT_TEST_DB
        else process.env.AUDIT_TEST_DB = saved
      })
      process.env.AUDIT_TEST_DB = db
      const result = yield* run("verify", "--config", config, "--sink", "audit")
      expect(result.code).toBe(0)
      expect(result.out).toContain("120 record(s)")
      expect((yield* run("verify", "--config", config, "--sink", "files")).code).toBe(0)
      const several = yield* run("verify", "--config", config)
      expect(several.code).toBe(2)
      expect(several.error?.message).toContain("several audit-log sinks (audit, files, broken)")
      const broken = yield* run("verify", "--config", config, "--sink", "broken")
      expect(broken.code).toBe(2)
      expect(broken.error?.message).toContain("sinks.broken.gzip: Expected boolean")
      const unknown = yield* run("verify", "--config", config, "--sink", "slack")
      expect(unknown.error?.message).toContain('no audit-log sink named "slack"')
      // An unset variable is said, not read as an empty path.
      delete process.env.AUDIT_TEST_DB
      const unset = yield* run("verify", "--config", config, "--sink", "audit")
      expect(unset.code).toBe(2)
      expect(unset.error?.message).toBe(
        `--config ${config}: sinks.audit: environment variable AUDIT_TEST_DB is not set`
      )
    })
  )

  it.live(
    "--config: a relative path is relative to the config file's folder, as in the relay",
    () =>
      Effect.gen(function* () {
        const folder = path.join(dir, "elsewhere")
        fs.mkdirSync(folder, { recursive: true })
        fs.copyFileSync(db, path.join(folder, "audit.db"))
        const config = path.join(folder, "relay.yaml")
        fs.writeFileSync(config, "sinks:\n  audit: { type: audit-log, path: ./audit.db }\n")
        // The working directory is not the config file's folder.
        expect(process.cwd()).not.toBe(folder)
        const result = yield* run("verify", "--config", config)
        expect(result.code).toBe(0)
        expect(result.out).toContain("120 record(s)")
      })
  )
})

describe("audit query", () => {
  it.live(
    "--mismatched selects the events that break the spec, with where (SQLite and JSONL)",
    () =>
      Effect.gen(function* () {
        const sqlite = path.join(dir, "mismatched.db")
        const folder = path.join(dir, "mismatched-jsonl")
        const marked = drifted(4, 11)
        const records = [...events(10), ...marked, ...events(6, 15)].map(Record.fromEvent)
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* (yield* SqliteStore.make({ path: sqlite })).append(records)
            yield* (yield* JsonlStore.make({ directory: folder })).append(records)
          })
        )
        const newestFirst = marked.map((e) => e.id).reverse()
        for (const store of [
          ["--sqlite", sqlite],
          ["--jsonl", folder]
        ]) {
          const json = yield* run("query", ...store, "--mismatched", "--format", "json")
          expect(json.code, json.err).toBe(0)
          const found = JSON.parse(json.out) as Array<Record.StoredRecord>
          expect(found.map((r) => r.id)).toEqual(newestFirst)
          expect(found.map((r) => r.event)).toEqual([...marked].reverse())
          expect(found.at(-1)!.schema_mismatch).toBe(
            Sink.formatMismatch(Sink.mismatchOf(marked[0]!)!)
          )
          const csv = yield* run("query", ...store, "--mismatched", "--format", "csv")
          const [header, ...rows] = csv.out.split("\n")
          expect(header).toBe(
            "created_at,type,organization_id,actor,targets,ip_address,id,seq,schema_mismatch"
          )
          expect(rows).toHaveLength(4)
          // Quoted as CSV quotes it: it has quotes and commas.
          expect(
            rows.at(-1)!.endsWith(`,"${found.at(-1)!.schema_mismatch!.replace(/"/g, '""')}"`)
          ).toBe(true)
          const roles = marked.filter((e) => e.event.startsWith("organization_role."))
          expect(roles.length).toBeGreaterThan(0)
          const table = yield* run(
            "query",
            ...store,
            "--mismatched",
            "--type",
            "organization_role.*"
          )
          expect(table.out).toContain("schema_mismatch")
          expect(table.out).toContain(`(${roles.length} record${roles.length === 1 ? "" : "s"})`)
          // Without the flag: every record, and a table of events that match the spec keeps its columns.
          const plain = yield* run("query", ...store, "--limit", "5", "--format", "csv")
          expect(plain.out.split("\n")[0]).toBe(
            "created_at,type,organization_id,actor,targets,ip_address,id,seq"
          )
        }
      })
  )

  it.live("filters and prints JSON, newest first", () =>
    Effect.gen(function* () {
      const result = yield* run(
        "query",
        "--sqlite",
        db,
        "--type",
        "dsync.user.*",
        "--org",
        "org_a",
        "--format",
        "json"
      )
      expect(result.code).toBe(0)
      const records = JSON.parse(result.out) as ReadonlyArray<Record.StoredRecord>
      const expected = events(120)
        .map(Record.fromEvent)
        .filter((r) => r.type.startsWith("dsync.user.") && r.organization_id === "org_a")
        .reverse()
      expect(records.map((r) => r.id)).toEqual(expected.map((r) => r.id))
      expect(records[0]!.event).toEqual(expected[0]!.event)
    })
  )

  it.live("takes several type patterns, a time window and a limit; prints CSV and a table", () =>
    Effect.gen(function* () {
      const since = new Date(start + 10 * 60_000).toISOString()
      const until = new Date(start + 60 * 60_000).toISOString()
      const csv = yield* run(
        "query",
        "--jsonl",
        jsonl,
        "--type",
        "authentication.*_failed,user.*",
        "--type",
        "session.*",
        "--since",
        since,
        "--until",
        until,
        "--limit",
        "5",
        "--format",
        "csv"
      )
      expect(csv.code).toBe(0)
      const lines = csv.out.split("\n")
      expect(lines[0]).toBe("created_at,type,organization_id,actor,targets,ip_address,id,seq")
      const expected = events(120)
        .map(Record.fromEvent)
        .filter((r) => /^(authentication\..*_failed|user\..*|session\..*)$/.test(r.type))
        .filter((r) => r.created_at >= since && r.created_at < until)
        .reverse()
        .slice(0, 5)
      expect(lines.slice(1).map((l) => l.split(",").at(-2))).toEqual(expected.map((r) => r.id))
      const table = yield* run("query", "--sqlite", db, "--actor", "Jane Doe", "--limit", "3")
      expect(table.code).toBe(0)
      expect(table.out.split("\n")[0]).toMatch(/^created_at\s+type\s+organization_id\s+actor/)
      expect(table.out).toContain("Jane Doe user_01EHWNCE74X7JSDV0X3SZ3KJNY")
      expect(table.out).toContain("(3 records)")
    })
  )

  it.live("exits 2 on a bad time, time window, type or limit", () =>
    Effect.gen(function* () {
      const time = yield* run("query", "--sqlite", db, "--since", "yesterday-ish")
      expect(time.code).toBe(2)
      expect(time.error?.message).toContain("--since: expected an ISO-8601 time")
      expect((yield* run("query", "--sqlite", db, "--limit", "0")).code).toBe(2)
      expect((yield* run("query", "--sqlite", db, "--limit", "many")).code).toBe(2)
      const window = yield* run(
        "query",
        "--sqlite",
        db,
        "--since",
        "2026-01-01",
        "--until",
        "2020-01-01"
      )
      expect(window.code).toBe(2)
      expect(window.error?.message).toBe(
        "--since (2026-01-01T00:00:00.000Z) must be before --until (2020-01-01T00:00:00.000Z): no record can match"
      )
      const empty = yield* run("query", "--sqlite", db, "--type", "")
      expect(empty.code).toBe(2)
      expect(empty.error?.message).toBe(
        '--type: expected event type patterns such as "dsync.user.*", got an empty one (in "")'
      )
    })
  )

  it("reads relative times as durations ago", () => {
    const now = Date.parse("2026-06-10T00:00:00Z")
    expect(Cli.parseTime("7d", now)?.toISOString()).toBe("2026-06-03T00:00:00.000Z")
    expect(Cli.parseTime("2026-01-31", now)?.toISOString()).toBe("2026-01-31T00:00:00.000Z")
    expect(Cli.parseTime("nonsense", now)).toBeUndefined()
  })

  it.effect(
    "parseQuery: the same checks for a request, naming its parameter; a page's cursor",
    () =>
      Effect.gen(function* () {
        const now = Date.parse("2026-06-10T00:00:00Z")
        const asParam = (p: string) => `query parameter ${p}`
        const reason = (params: Inspect.QueryParams) =>
          Inspect.parseQuery(params, asParam, now).pipe(
            Effect.flip,
            Effect.map((e) => e.reason)
          )
        expect(yield* reason({ since: "soon" })).toContain(
          'query parameter since: expected an ISO-8601 time (2026-01-31T00:00:00Z) or a duration ago (24h, 7d), got "soon"'
        )
        expect(yield* reason({ since: "1d", until: "2d" })).toContain(
          "query parameter since (2026-06-09T00:00:00.000Z) must be before query parameter until"
        )
        expect(yield* reason({ limit: 0 })).toContain("query parameter limit: expected a positive")
        expect(yield* reason({ types: ["user.*,"] })).toContain("query parameter type:")
        expect(yield* reason({ before: "seq-42" })).toContain(
          'query parameter before: expected the cursor of a page (created_at~seq, as the last page gave it), got "seq-42"'
        )
        const cursor = Inspect.formatCursor({ created_at: "2026-01-01T00:00:00.000Z", seq: 42 })
        expect(
          yield* Inspect.parseQuery(
            { types: ["user.*, dsync.*"], org: "org_a", since: "7d", before: cursor, limit: 5 },
            asParam,
            now
          )
        ).toEqual({
          types: ["user.*", "dsync.*"],
          org: "org_a",
          since: new Date("2026-06-03T00:00:00.000Z"),
          limit: 5,
          before: { createdAt: "2026-01-01T00:00:00.000Z", seq: 42 }
        })
      })
  )
})

describe("audit keygen, public-key, verify --digests", () => {
  it.live(
    "makes a key pair, signs a digest, proves the log, and names the digest a tail cut contradicts",
    () =>
      Effect.gen(function* () {
        const keyFile = path.join(dir, "digest-key.pem")
        const made = yield* run("keygen", "--private-key-file", keyFile)
        expect(made.code).toBe(0)
        expect(made.out).toMatch(/^-----BEGIN PUBLIC KEY-----/)
        expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600)
        // Never overwritten.
        expect((yield* run("keygen", "--private-key-file", keyFile)).code).toBe(2)
        const printed = yield* run("public-key", "--private-key-file", keyFile)
        expect(printed.out).toBe(made.out)
        const publicFile = path.join(dir, "digest-key.pub")
        fs.writeFileSync(publicFile, `${printed.out}\n`)

        const copy = path.join(dir, "digested.db")
        fs.copyFileSync(db, copy)
        const digests = path.join(dir, "digests")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const store = yield* SqliteStore.make({ path: copy, readOnly: true })
            const key = Digest.privateKeyFrom(fs.readFileSync(keyFile, "utf8"))
            Digest.writer(digests, key).write("head", (yield* store.head)!)
          })
        )
        const ok = yield* run(
          "verify",
          "--sqlite",
          copy,
          "--digests",
          digests,
          "--public-key",
          publicFile
        )
        expect(ok.code).toBe(0)
        expect(ok.out).toBe(
          `audit log ${copy}: OK: 120 record(s) verified; 1 signed digest(s) hold: every record they cover is there, unchanged, in order`
        )
        expect((yield* run("verify", "--sqlite", copy, "--digests", digests)).error?.message).toBe(
          "--digests and --public-key go together: the digests are checked with the key"
        )

        // The last 20 records cut, and the head moved back to match: plain verify says OK.
        const raw = new DatabaseSync(copy)
        const at100 = raw.prepare("SELECT hash FROM audit_records WHERE seq = 100").get() as {
          hash: string
        }
        raw.exec("DELETE FROM audit_records WHERE seq > 100")
        raw
          .prepare("UPDATE audit_chain SET head_seq = 100, head_hash = ?, head_count = 100")
          .run(at100.hash)
        raw.close()
        expect((yield* run("verify", "--sqlite", copy)).code).toBe(0)
        const cut = yield* run(
          "verify",
          "--sqlite",
          copy,
          "--digests",
          digests,
          "--public-key",
          publicFile
        )
        expect(cut.code).toBe(1)
        expect(cut.err).toContain(
          `audit log ${copy}: FAILED (truncated): the store ends at record #100, but digest 1 (`
        )
        expect(cut.err).toContain("covers records up to #120")
      })
  )
})
