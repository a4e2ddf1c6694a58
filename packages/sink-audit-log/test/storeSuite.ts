/**
 * The tests every store passes (SQLite, Postgres, JSONL): exactly once, whole
 * batches, every kind of tampering found by verify, queries, retention.
 */
import { describe, expect, it } from "@effect/vitest"
import { Sink } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Chain from "../src/Chain.ts"
import * as Record from "../src/Record.ts"
import type { Cursor, Query, Shape, StoreError } from "../src/Store.ts"
import { drifted, events, start } from "./fixtures.ts"

/** Raw edits that bypass the store, as someone with write access to it could make. */
export interface Tamper {
  /** Changes the stored ip_address of record `seq`. */
  readonly modify: (seq: number) => Promise<void>
  readonly remove: (seq: number) => Promise<void>
  /** Slips `record` in right after record `seq`. */
  readonly insertAfter: (seq: number, record: Record.StoredRecord) => Promise<void>
  /** Swaps the places of records `seq` and `seq + 1`. */
  readonly swap: (seq: number) => Promise<void>
  /** SQL stores: sets the `actor_id` and `actor_name` columns of record `seq` (copies of its actor, not hashed). */
  readonly setActorColumns?: (seq: number, id: string, name: string) => Promise<void>
  /** SQL stores: deletes the chain's row (its anchor and head). */
  readonly deleteChainRow?: () => Promise<void>
  /** Sets (null: removes) the stored `schema_mismatch` of record `seq`. */
  readonly setMismatch: (seq: number, value: string | null) => Promise<void>
  /** Makes the store one of schema version 1, as an earlier version of this package left it. */
  readonly downgrade: () => Promise<void>
}

export interface Opened {
  readonly store: Shape
  readonly tamper: Tamper
  /** Opens the same store again (as a restarted process would). */
  readonly reopen: Effect.Effect<Shape, unknown, Scope.Scope>
}

const records = (n: number, from = 1) => events(n, from).map(Record.fromEvent)

export const storeSuite = (
  /** A new, empty store; `key` tells tests apart. */
  open: (key: string) => Effect.Effect<Opened, unknown, Scope.Scope>
) => {
  describe("exactly once", () => {
    it.live("appends a batch, then ignores a re-delivery of it and duplicates within a batch", () =>
      Effect.gen(function* () {
        const { store } = yield* open("once")
        const batch = records(20)
        expect(yield* store.append(batch)).toEqual({ inserted: 20, duplicates: 0 })
        expect(yield* store.append(batch)).toEqual({ inserted: 0, duplicates: 20 })
        const next = records(5, 21)
        expect(yield* store.append([...next, next[0]!, batch[3]!])).toEqual({
          inserted: 5,
          duplicates: 2
        })
        const report = yield* store.verify
        expect(report.problem).toBeNull()
        expect(report.records).toBe(25)
        const all = yield* store.query({ limit: 1000 })
        expect(all.map((r) => r.seq)).toEqual(Array.from({ length: 25 }, (_, i) => 25 - i))
        expect(new Set(all.map((r) => r.id)).size).toBe(25)
      })
    )

    it.live("keeps records as sent across a reopen", () =>
      Effect.gen(function* () {
        const { store, reopen } = yield* open("reopen")
        const batch = records(3)
        yield* store.append(batch)
        const again = yield* reopen
        expect(yield* again.append(batch)).toEqual({ inserted: 0, duplicates: 3 })
        const [newest] = yield* again.query({ limit: 1 })
        expect(newest!.event).toEqual(batch[2]!.event)
        expect(newest!.hash).toBe(Chain.hash(newest!.prev_hash, newest!))
        expect((yield* again.verify).problem).toBeNull()
      })
    )
  })

  describe("verify finds tampering", () => {
    const tampered = (
      key: string,
      edit: (t: Tamper, stored: ReadonlyArray<Record.StoredRecord>) => Promise<void>
    ) =>
      Effect.gen(function* () {
        const { store, tamper } = yield* open(key)
        yield* store.append(records(5))
        yield* store.append(records(5, 6))
        const stored = [...(yield* store.query({ limit: 100 }))].reverse()
        yield* Effect.promise(() => edit(tamper, stored))
        return { report: yield* store.verify, stored }
      })

    it.live("a modified record", () =>
      Effect.gen(function* () {
        const { report, stored } = yield* tampered("modify", (t) => t.modify(7))
        expect(report.problem).toMatchObject({ kind: "modified", seq: 7, id: stored[6]!.id })
        expect(report.problem!.message).toContain(stored[6]!.id)
      })
    )

    it.live("a deleted record", () =>
      Effect.gen(function* () {
        const { report, stored } = yield* tampered("delete", (t) => t.remove(4))
        expect(report.problem).toMatchObject({ kind: "deleted", seq: 5, id: stored[4]!.id })
      })
    )

    it.live("the first record deleted", () =>
      Effect.gen(function* () {
        const { report } = yield* tampered("delete-first", (t) => t.remove(1))
        expect(report.problem).toMatchObject({ kind: "deleted", seq: 2 })
      })
    )

    it.live("the last record deleted", () =>
      Effect.gen(function* () {
        const { report } = yield* tampered("delete-last", (t) => t.remove(10))
        expect(report.problem).toMatchObject({ kind: "deleted", seq: null })
      })
    )

    it.live("an inserted record, even one with correctly computed hashes", () =>
      Effect.gen(function* () {
        const { report } = yield* tampered("insert", (t, stored) => {
          const forged = Record.fromEvent({ ...events(1, 99)[0]!, id: "event_forged" })
          const prev = stored[5]!
          return t.insertAfter(6, {
            ...forged,
            seq: 7,
            prev_hash: prev.hash,
            hash: Chain.hash(prev.hash, forged)
          })
        })
        expect(report.problem).toMatchObject({ kind: "inserted", id: "event_forged" })
      })
    )

    it.live("reordered records", () =>
      Effect.gen(function* () {
        const { report, stored } = yield* tampered("reorder", (t) => t.swap(3))
        expect(report.problem).toMatchObject({ kind: "reordered", id: stored[3]!.id })
      })
    )
  })

  describe("events that break the spec", () => {
    it.live(
      "kept whole, as WorkOS sent them, with their schema_mismatch; --mismatched selects them",
      () =>
        Effect.gen(function* () {
          const { store, reopen } = yield* open("mismatch")
          const marked = drifted(8, 3)
          // Among events that match the spec: 1-2, 3-10 drifted, 11-20.
          const batch = [
            ...records(2),
            ...marked.map(Record.fromEvent),
            ...events(10, 11).map(Record.fromEvent)
          ]
          expect(yield* store.append(batch)).toEqual({ inserted: 20, duplicates: 0 })
          const again = yield* reopen
          const mismatched = yield* again.query({ mismatched: true, limit: 1000 })
          expect(mismatched.map((r) => r.id)).toEqual(marked.map((e) => e.id).reverse())
          for (const record of mismatched) {
            const sent = marked.find((e) => e.id === record.id)!
            expect(record.event).toEqual(sent)
            expect(record.schema_mismatch).toBe(Sink.formatMismatch(Sink.mismatchOf(sent)!))
          }
          expect(mismatched.at(-1)!.schema_mismatch).toBe(
            "data.resource_type_slug: required field is missing"
          )
          // The others have none, and their records are as they always were.
          const rest = (yield* again.query({ limit: 1000 })).filter(
            (r) => r.schema_mismatch === undefined
          )
          expect(rest.map((r) => r.id).sort()).toEqual(
            [...records(2), ...events(10, 11)].map((r) => r.id).sort()
          )
          expect(rest.every((r) => !("schema_mismatch" in r))).toBe(true)
          // Combined with the other filters.
          const roles = yield* again.query({
            mismatched: true,
            types: ["organization_role.*"],
            limit: 1000
          })
          expect(roles.length).toBeGreaterThan(0)
          expect(roles.map((r) => r.id)).toEqual(
            mismatched.filter((r) => r.type.startsWith("organization_role.")).map((r) => r.id)
          )
          const report = yield* again.verify
          expect(report.problem).toBeNull()
          expect(report.records).toBe(20)
        })
    )

    it.live(
      "the schema_mismatch is covered by the hash: set, changed or removed, verify says so",
      () =>
        Effect.gen(function* () {
          const edits: ReadonlyArray<readonly [string, number, string | null]> = [
            ["changed", 4, "data.other: changed"],
            ["removed", 4, null],
            ["set", 2, "data.id: forged"]
          ]
          for (const [name, seq, value] of edits) {
            const { store, tamper } = yield* open(`mismatch-${name}`)
            yield* store.append([...records(2), ...drifted(3, 3).map(Record.fromEvent)])
            expect((yield* store.verify).problem).toBeNull()
            yield* Effect.promise(() => tamper.setMismatch(seq, value))
            const report = yield* store.verify
            expect(report.problem, name).toMatchObject({ kind: "modified", seq })
          }
        })
    )

    it.live(
      "a store of schema version 1 is migrated: its records verify unchanged, and marked ones follow",
      () =>
        Effect.gen(function* () {
          const { store, tamper, reopen } = yield* open("migrate")
          yield* store.append(records(6))
          const before = yield* store.query({ limit: 100 })
          yield* Effect.promise(() => tamper.downgrade())
          const migrated = yield* reopen
          expect((yield* migrated.verify).problem).toBeNull()
          expect(yield* migrated.query({ limit: 100 })).toEqual(before)
          expect(yield* migrated.query({ mismatched: true })).toEqual([])
          yield* migrated.append([...drifted(2, 7), ...events(2, 9)].map(Record.fromEvent))
          const report = yield* migrated.verify
          expect(report.problem).toBeNull()
          expect(report.records).toBe(10)
          expect((yield* migrated.query({ mismatched: true })).map((r) => r.id)).toEqual([
            "event_000008",
            "event_000007"
          ])
        })
    )
  })

  describe("query", () => {
    it.live("filters by type patterns, organization, actor and time; newest first; limited", () =>
      Effect.gen(function* () {
        const { store } = yield* open("query")
        const batch = records(300)
        yield* store.append(batch)
        const ids = (rs: ReadonlyArray<{ id: string }>) => rs.map((r) => r.id)
        const expected = (keep: (r: Record.AuditRecord) => boolean, limit = 1000) =>
          batch
            .filter(keep)
            .reverse()
            .slice(0, limit)
            .map((r) => r.id)

        expect(ids(yield* store.query({ types: ["dsync.user.*"], limit: 1000 }))).toEqual(
          expected((r) => r.type.startsWith("dsync.user."))
        )
        const failed = yield* store.query({
          types: ["authentication.*_failed", "user.created"],
          limit: 1000
        })
        expect(failed.length).toBeGreaterThan(0)
        expect(ids(failed)).toEqual(
          expected((r) => /^authentication\..*_failed$/.test(r.type) || r.type === "user.created")
        )
        // `_` is literal: "authentication.sso_*" must not match "authentication.ssoX".
        expect(ids(yield* store.query({ types: ["authentication.sso_*"], limit: 1000 }))).toEqual(
          expected((r) => r.type.startsWith("authentication.sso_"))
        )
        expect(ids(yield* store.query({ org: "org_a", limit: 1000 }))).toEqual(
          expected((r) => r.organization_id === "org_a")
        )
        const jane = "user_01EHWNCE74X7JSDV0X3SZ3KJNY"
        const byJane = expected((r) => r.actor?.id === jane || r.actor?.name === jane)
        expect(byJane.length).toBeGreaterThan(0)
        expect(ids(yield* store.query({ actor: jane, limit: 1000 }))).toEqual(byJane)
        const payloadUser = batch.find(
          (r) =>
            r.type === "authentication.password_failed" &&
            r.event !== null &&
            (r.event as any).context === undefined
        )
        if (payloadUser !== undefined) {
          const email = payloadUser.actor!.name!
          expect(ids(yield* store.query({ actor: email, limit: 1000 }))).toEqual(
            expected((r) => r.actor?.id === email || r.actor?.name === email)
          )
        }
        const since = new Date(start + 100 * 60_000)
        const until = new Date(start + 150 * 60_000)
        expect(ids(yield* store.query({ since, until, org: "org_b", limit: 1000 }))).toEqual(
          expected(
            (r) =>
              r.created_at >= since.toISOString() &&
              r.created_at < until.toISOString() &&
              r.organization_id === "org_b"
          )
        )
        expect(ids(yield* store.query({ limit: 7 }))).toEqual(expected(() => true, 7))
        expect(yield* store.query({ types: ["no.such.*"] })).toEqual([])
        expect((yield* store.query({})).length).toBe(100)
      })
    )

    it.live(
      "pages with `before`: every record once, in order, ties in created_at too, filters kept",
      () =>
        Effect.gen(function* () {
          const { store } = yield* open("pages")
          // Three records a minute: records with the same created_at, told apart by seq.
          const batch = records(61).map((r, i) => ({
            ...r,
            created_at: new Date(start + Math.floor(i / 3) * 60_000).toISOString()
          }))
          yield* store.append(batch)
          const paged = (q: Omit<Query, "before" | "limit">) =>
            Effect.gen(function* () {
              const seen: Array<string> = []
              let before: Cursor | undefined
              while (true) {
                const page = yield* store.query({ ...q, limit: 7, ...(before ? { before } : {}) })
                seen.push(...page.map((r) => r.id))
                if (page.length < 7) return seen
                const last = page.at(-1)!
                before = { createdAt: last.created_at, seq: last.seq }
              }
            })
          const ids = (rs: ReadonlyArray<{ id: string }>) => rs.map((r) => r.id)
          expect(yield* paged({})).toEqual(ids(batch).reverse())
          for (const q of [
            { org: "org_a" },
            { types: ["dsync.*", "user.*"] },
            { actor: "user_01EHWNCE74X7JSDV0X3SZ3KJNY" },
            { since: new Date(start + 5 * 60_000), until: new Date(start + 15 * 60_000) }
          ]) {
            const whole = ids(yield* store.query({ ...q, limit: 1000 }))
            expect(whole.length, JSON.stringify(q)).toBeGreaterThan(0)
            expect(yield* paged(q), JSON.stringify(q)).toEqual(whole)
          }
          // Records appended after the first page never shift the pages after it.
          const [first] = yield* store.query({ limit: 1 })
          yield* store.append(records(3, 100))
          const rest = yield* store.query({
            limit: 1000,
            before: { createdAt: first!.created_at, seq: first!.seq }
          })
          expect(ids(rest)).toEqual(ids(batch).reverse().slice(1))
        })
    )
  })
}

/** Retention for the SQL stores: records older than the cutoff go, the chain still verifies. */
export const retentionSuite = (
  open: (key: string) => Effect.Effect<Opened, unknown, Scope.Scope>
) =>
  it.live("retention deletes the oldest records and verify still holds from the anchor", () =>
    Effect.gen(function* () {
      const { store, reopen, tamper } = yield* open("retention")
      yield* store.append(records(50))
      yield* store.append(records(50, 51))
      // Records are one minute apart from start: keep those created at or after minute 40.
      const cutoff = new Date(start + 40 * 60_000)
      // A plan (what retention signs first) says what would go, and deletes nothing.
      const plan = yield* store.prune(cutoff, { plan: true })
      expect(plan.deleted).toBe(39)
      expect(plan.anchor.seq).toBe(39)
      expect((yield* store.query({ limit: 1000 })).length).toBe(100)
      expect((yield* store.head)!.anchor.seq).toBe(0)
      // `upTo` cuts no further than a plan said, whatever else has become old.
      const first = yield* store.prune(cutoff, { upTo: 20 })
      expect(first).toEqual({ deleted: 20, anchor: expect.objectContaining({ seq: 20 }) })
      const pruned = yield* store.prune(cutoff)
      expect(pruned.deleted).toBe(19)
      expect(pruned.anchor).toEqual(plan.anchor)
      const report = yield* store.verify
      expect(report.problem).toBeNull()
      expect(report.records).toBe(61)
      expect(report.anchor.seq).toBe(39)
      expect((yield* store.prune(new Date(start + 40 * 60_000))).deleted).toBe(0)
      // Appends go on from the head, and a restarted process agrees.
      yield* store.append(records(5, 101))
      const again = yield* reopen
      expect((yield* again.verify).problem).toBeNull()
      expect((yield* again.verify).records).toBe(66)
      // Deleting the first kept record is still caught: the anchor says what must follow.
      const oldest = (yield* again.query({ limit: 1000 })).at(-1)!
      expect(oldest.seq).toBe(40)
      yield* Effect.promise(() => tamper.remove(40))
      const afterDelete = yield* again.verify
      expect(afterDelete.problem).toMatchObject({ kind: "deleted", seq: 41 })
      expect(afterDelete.problem!.message).toBe(
        `record(s) between the anchor and ${`record #41 (event ${(yield* again.query({ limit: 1000 })).at(-1)!.id})`} were deleted: it links to a hash no kept record has`
      )
    })
  )

/** Tampering only the SQL stores allow: their query columns and their chain row. */
export const sqlSuite = (open: (key: string) => Effect.Effect<Opened, unknown, Scope.Scope>) => {
  it.live(
    "verify finds a record whose actor query columns were changed (not hashed themselves)",
    () =>
      Effect.gen(function* () {
        const { store, tamper } = yield* open("actor-columns")
        yield* store.append(records(10))
        const [seven] = yield* store.query({ limit: 1, until: new Date(start + 8 * 60_000) })
        yield* Effect.promise(() => tamper.setActorColumns!(7, "user_mallory", "Mallory"))
        // What `audit query --actor Mallory` would now find: the report must not say OK.
        expect((yield* store.query({ actor: "Mallory" })).map((r) => r.seq)).toEqual([7])
        const report = yield* store.verify
        expect(report.problem).toEqual({
          kind: "modified",
          seq: 7,
          id: seven!.id,
          message: `record #7 (event ${seven!.id}) was modified: its actor_id column says "user_mallory" but its actor says ${JSON.stringify(seven!.actor?.id ?? null)}; its actor_name column says "Mallory" but its actor says ${JSON.stringify(seven!.actor?.name ?? null)}`
        })
      })
  )

  it.live("a deleted chain row: verify says so; appending fails as fatal", () =>
    Effect.gen(function* () {
      const { store, tamper } = yield* open("chain-row")
      yield* store.append(records(3))
      yield* Effect.promise(() => tamper.deleteChainRow!())
      const report = yield* store.verify
      expect(report.problem).toEqual({
        kind: "deleted",
        seq: null,
        id: null,
        message:
          "the chain's head row is missing (table audit_chain has no row): the store was damaged or tampered with; restore it from a backup"
      })
      const error = (yield* Effect.flip(store.append(records(2, 4)))) as StoreError
      expect(error.fatal).toBe(true)
      expect(error.operation).toBe("appending a batch")
      expect(["SQLite", "Postgres"]).toContain(error.store)
      expect(error.message).toBe(
        `${error.store} audit log ${store.where}: appending a batch failed: the chain's head row is missing (table audit_chain has no row): the store was damaged or tampered with; restore it from a backup`
      )
      expect((yield* store.query({})).length).toBe(3)
    })
  )
}
