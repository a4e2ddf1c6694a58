/**
 * The console's audit-log API against a running relay with two audit-log sinks (SQLite
 * and JSONL) on the WorkOS stand-in: each filter returns the store's records, paging
 * shows every record once, bad parameters are a 400 that names them, verify finds a
 * record changed in the SQLite file, and a relay without an audit-log sink says so.
 */
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { describe, expect, it } from "@effect/vitest"
import { Record } from "@workos-relay/sink-audit-log"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Api from "../src/console/Api.ts"
import { startConsoleRelay } from "./consoleRelay.ts"
import { tempDir, waitUntil } from "./helpers.ts"

const get = (base: string, path: string) =>
  Effect.promise(async () => {
    const r = await fetch(`${base}/console/api/${path}`)
    return { status: r.status, json: (await r.json()) as any }
  })

const post = (base: string, path: string, body: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const r = await fetch(`${base}/console/api/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body
    })
    return { status: r.status, json: (await r.json()) as any }
  })

/** One page, decoded with the API's own Schema. */
const page = (base: string, query: string) =>
  get(base, `audit/query?${query}`).pipe(
    Effect.flatMap((a) => {
      expect(a.status, JSON.stringify(a.json)).toBe(200)
      return Schema.decodeUnknownEffect(Api.AuditPage)(a.json)
    }),
    Effect.orDie
  )

/** Every page of a query, following `next`: the ids in the order shown, repeats kept. */
const allPages = (base: string, query: string, limit: number, between?: () => void) =>
  Effect.gen(function* () {
    const ids: Array<string> = []
    let before: string | null = null
    let pages = 0
    do {
      const q = new URLSearchParams(query)
      q.set("limit", String(limit))
      if (before !== null) q.set("before", before)
      const p = yield* page(base, q.toString())
      expect(p.records.length).toBeLessThanOrEqual(limit)
      ids.push(...p.records.map((r) => r.id))
      before = p.next
      pages++
      if (pages === 1) between?.()
    } while (before !== null)
    return { ids, pages }
  })

const startAuditRelay = () =>
  Effect.gen(function* () {
    const dir = tempDir("relay-console-audit-")
    const sqlite = Path.join(dir, "audit.db")
    const relay = yield* startConsoleRelay({}, "127.0.0.1:0", {
      audit: { type: "audit-log", path: sqlite },
      archive: { type: "audit-log", store: "jsonl", directory: Path.join(dir, "archive") }
    })
    yield* waitUntil(
      "both audit logs written",
      () =>
        relay.metrics.sink("audit").delivered === relay.standIn.size() &&
        relay.metrics.sink("archive").delivered === relay.standIn.size()
    )
    // What the store should hold, newest first: the stand-in's events as the package maps them.
    const records = relay.standIn
      .events()
      .map((e) => Record.fromEvent(e as never))
      .reverse()
    return { ...relay, sqlite, records }
  })

describe("console audit log", () => {
  it.live(
    "each filter returns the store's records, newest first, from either sink; paging shows each once",
    () =>
      Effect.gen(function* () {
        const relay = yield* startAuditRelay()
        const sinks = yield* get(relay.base, "audit")
        expect(sinks.status).toBe(200)
        expect(Schema.decodeUnknownSync(Api.AuditSinks)(sinks.json)).toEqual({
          installed: true,
          help: "",
          sinks: [
            { name: "audit", store: "sqlite", where: relay.sqlite },
            { name: "archive", store: "jsonl", where: expect.stringMatching(/archive$/) }
          ]
        })

        const ids = (keep: (r: Record.AuditRecord) => boolean) =>
          relay.records.filter(keep).map((r) => r.id)
        const org = relay.records.find((r) => r.organization_id !== null)!.organization_id!
        const actor = relay.records.find((r) => r.actor?.id != null)!.actor!.id!
        const since = relay.records[150]!.created_at
        const until = relay.records[50]!.created_at
        const cases: ReadonlyArray<[string, (r: Record.AuditRecord) => boolean]> = [
          ["", () => true],
          ["type=user.*", (r) => r.type.startsWith("user.")],
          [
            "type=user.created&type=dsync.group.*",
            (r) => r.type === "user.created" || r.type.startsWith("dsync.group.")
          ],
          [
            "type=authentication.*_failed,session.created",
            (r) => /^authentication\..*_failed$/.test(r.type) || r.type === "session.created"
          ],
          [`org=${org}`, (r) => r.organization_id === org],
          [`actor=${actor}`, (r) => r.actor?.id === actor || r.actor?.name === actor],
          [`since=${since}&until=${until}`, (r) => r.created_at >= since && r.created_at < until],
          [
            `org=${org}&type=dsync.*&since=${since}`,
            (r) => r.organization_id === org && r.type.startsWith("dsync.") && r.created_at >= since
          ]
        ]
        for (const [query, keep] of cases) {
          const want = ids(keep)
          expect(want.length, query).toBeGreaterThan(0)
          for (const sink of ["audit", "archive"]) {
            const p = yield* page(relay.base, `sink=${sink}&limit=1000&${query}`)
            expect(
              p.records.map((r) => r.id),
              `${sink}: ${query}`
            ).toEqual(want)
            expect(p.next).toBeNull()
          }
        }
        // A record whole: the event as WorkOS sent it, its place in the chain.
        const [newest] = (yield* page(relay.base, "sink=audit&limit=1")).records
        const sent = relay.standIn.events().at(-1)!
        expect(newest!.event).toEqual(sent)
        expect(newest!.seq).toBe(relay.standIn.size())
        expect(newest!.hash).toMatch(/^[0-9a-f]{64}$/)

        // Paging: 7 at a time covers every record once, in order, in either store.
        for (const sink of ["audit", "archive"]) {
          const all = yield* allPages(relay.base, `sink=${sink}`, 7)
          expect(all.ids).toEqual(ids(() => true))
          expect(all.pages).toBe(Math.ceil(relay.records.length / 7))
        }
        const byOrg = yield* allPages(relay.base, `sink=audit&org=${org}`, 3)
        expect(byOrg.ids).toEqual(ids((r) => r.organization_id === org))
        // Events that arrive while an operator pages (newer ones) never shift a page.
        let added: ReadonlyArray<{ id: string }> = []
        const during = yield* allPages(relay.base, "sink=audit", 50, () => {
          added = relay.standIn.appendGenerated(30)
        })
        expect(during.ids).toEqual(ids(() => true))
        yield* waitUntil(
          "the new events kept",
          () => relay.metrics.sink("audit").delivered === relay.standIn.size()
        )
        const first = yield* page(relay.base, "sink=audit&limit=30")
        expect(first.records.map((r) => r.id)).toEqual(added.map((e) => e.id).reverse())

        // Events that break the spec, kept as sent: `mismatched=true` finds them, only them.
        const drifted = relay.standIn.appendDrifted()
        expect(drifted.length).toBeGreaterThan(0)
        yield* waitUntil(
          "the drifted events kept",
          () => relay.metrics.sink("audit").delivered === relay.standIn.size()
        )
        const mismatched = yield* page(relay.base, "sink=audit&mismatched=true&limit=1000")
        expect(mismatched.records.map((r) => r.id)).toEqual(drifted.map((e) => e.id).reverse())
        expect(mismatched.records.every((r) => r.schema_mismatch !== undefined)).toBe(true)
        yield* relay.stop
      }).pipe(Effect.scoped),
    90_000
  )

  it.live(
    "bad parameters are a 400 that names them; a sink must be chosen among several",
    () =>
      Effect.gen(function* () {
        const relay = yield* startAuditRelay()
        const refused = [
          [
            "sink=audit&since=yesterday-ish",
            400,
            "query parameter since: expected an ISO-8601 time"
          ],
          [
            "sink=audit&since=2026-01-02&until=2026-01-01",
            400,
            "query parameter since (2026-01-02T00:00:00.000Z) must be before query parameter until"
          ],
          [
            "sink=audit&limit=0",
            400,
            'query parameter limit: expected a whole number from 1 to 1000, got "0"'
          ],
          ["sink=audit&limit=5000", 400, "query parameter limit: expected a whole number"],
          ["sink=audit&limit=ten", 400, "query parameter limit: expected a whole number"],
          ["sink=audit&type=", 400, "query parameter type: expected event type patterns"],
          ["sink=audit&type=user.*,", 400, "query parameter type: expected event type patterns"],
          [
            "sink=audit&before=page-2",
            400,
            "query parameter before: expected the cursor of a page"
          ],
          ["sink=audit&org=", 400, "query parameter org: empty"],
          ["sink=audit&org=a&org=b", 400, "query parameter org: given 2 times"],
          ["sink=audit&mismatched=yes", 400, "bad query parameters"],
          ["sink=audit&organization=org_1", 400, 'unknown query parameter "organization"'],
          [
            "type=user.*",
            400,
            "query parameter sink: this relay has several audit-log sinks (audit, archive): choose one"
          ],
          [
            "sink=nope",
            404,
            'query parameter sink: no audit-log sink named "nope" (audit-log sinks: audit, archive)'
          ]
        ] as const
        for (const [query, status, error] of refused) {
          const answer = yield* get(relay.base, `audit/query?${query}`)
          expect(answer.status, query).toBe(status)
          expect(answer.json.error, query).toContain(error)
        }
        yield* relay.stop
      }).pipe(Effect.scoped),
    90_000
  )

  it.live(
    "verify: OK with counts; after a record is changed in the SQLite file, that record and why; POST rules",
    () =>
      Effect.gen(function* () {
        const relay = yield* startAuditRelay()
        const verify = (body: unknown) => post(relay.base, "audit/verify", JSON.stringify(body))
        const ok = yield* verify({ sink: "audit" })
        expect(ok.status).toBe(200)
        expect(Schema.decodeUnknownSync(Api.AuditVerify)(ok.json)).toMatchObject({
          sink: "audit",
          where: relay.sqlite,
          ok: true,
          records: relay.standIn.size(),
          anchorSeq: 0,
          problem: null,
          summary: expect.stringContaining(`OK: ${relay.standIn.size()} record(s) verified`)
        })
        expect((yield* verify({ sink: "archive" })).json.ok).toBe(true)
        // Clicked again meanwhile: the walks take turns, each answers.
        const both = yield* Effect.all([verify({ sink: "audit" }), verify({ sink: "archive" })], {
          concurrency: 2
        })
        expect(both.map((a) => a.json.records)).toEqual([
          relay.standIn.size(),
          relay.standIn.size()
        ])

        // Actions' rules: JSON only, the console's own origin, a known sink, one chosen.
        const form = yield* post(relay.base, "audit/verify", "sink=audit", {
          "content-type": "application/x-www-form-urlencoded"
        })
        expect(form.status).toBe(415)
        const foreign = yield* post(relay.base, "audit/verify", '{"sink":"audit"}', {
          origin: "https://evil.example"
        })
        expect(foreign.status).toBe(403)
        expect((yield* verify({})).json.error).toContain("several audit-log sinks")
        expect((yield* verify({ sink: 7 })).status).toBe(400)
        expect((yield* post(relay.base, "audit/verify", "{")).status).toBe(400)
        expect((yield* verify({ sink: "nope" })).status).toBe(404)

        // Someone with write access changes a kept record: verify names it and says why.
        const victim = relay.records.find((r) => r.type === "user.created")!
        const db = new DatabaseSync(relay.sqlite)
        db.exec("PRAGMA busy_timeout = 10000")
        const changed = db
          .prepare("UPDATE audit_records SET ip_address = '203.0.113.66' WHERE id = ?")
          .run(victim.id)
        db.close()
        expect(changed.changes).toBe(1)
        const seq = (yield* page(
          relay.base,
          `sink=audit&limit=1000&type=user.created`
        )).records.find((r) => r.id === victim.id)!.seq
        const broken = yield* verify({ sink: "audit" })
        expect(broken.status).toBe(200)
        expect(broken.json).toMatchObject({
          ok: false,
          problem: { kind: "modified", seq, id: victim.id },
          summary: expect.stringContaining(`FAILED (modified): record #${seq} (event ${victim.id})`)
        })
        // The other store is untouched.
        expect((yield* verify({ sink: "archive" })).json.ok).toBe(true)
        yield* relay.stop
      }).pipe(Effect.scoped),
    90_000
  )

  it.live(
    "a relay without an audit-log sink says how to have one; its endpoints a clear 404",
    () =>
      Effect.gen(function* () {
        const relay = yield* startConsoleRelay()
        const sinks = yield* get(relay.base, "audit")
        expect(sinks.status).toBe(200)
        expect(sinks.json).toEqual({
          installed: true,
          sinks: [],
          help: expect.stringContaining(
            "No audit-log sink is configured: add a sink of type audit-log"
          )
        })
        for (const answer of [
          yield* get(relay.base, "audit/query?type=user.*"),
          yield* post(relay.base, "audit/verify", "{}")
        ]) {
          expect(answer.status).toBe(404)
          expect(answer.json.error).toContain("no audit-log sink is configured")
        }
        yield* relay.stop
      }).pipe(Effect.scoped),
    60_000
  )
})
