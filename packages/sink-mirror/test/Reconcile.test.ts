import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import type { Event } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import { statusText } from "../src/Cli.ts"
import * as Reconcile from "../src/Reconcile.ts"
import { deliverTo } from "../src/Sink.ts"
import * as SqliteStore from "../src/SqliteStore.ts"
import { history, random, reference } from "./workload.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirror-reconcile-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
let n = 0
const open = () => SqliteStore.make({ path: path.join(dir, `r-${++n}.db`) })

/** What WorkOS lists after these events: each table's live objects. */
const listsAfter = (events: ReadonlyArray<Event.Any>) => {
  const ref = reference(events)
  return Object.fromEntries(
    Reconcile.reconcilable.map((t) => [
      t,
      (ref.get(t) ?? []).filter((r) => r.deletedAt === null).map((r) => r.object)
    ])
  ) as Record<Reconcile.Reconcilable, Array<Record<string, unknown>>>
}

/** Each table's live rows, as id -> canonical object. */
const liveRows = (
  store: ReturnType<typeof open> extends Effect.Effect<infer S, any, any> ? S : never
) =>
  Effect.gen(function* () {
    const out: Record<string, Record<string, string>> = {}
    for (const t of Reconcile.reconcilable) {
      out[t] = Object.fromEntries(
        (yield* store.rows(t))
          .filter((r) => r.deletedAt === null)
          .map((r) => [r.id, Reconcile.canonical(r.object)])
      )
    }
    return out
  })

const expectedLive = (lists: Record<string, Array<Record<string, unknown>>>) =>
  Object.fromEntries(
    Object.entries(lists).map(([t, objects]) => [
      t,
      Object.fromEntries(
        objects.map((o) => [
          Reconcile.keyOf(t as Reconcile.Reconcilable, o) as string,
          Reconcile.canonical(o)
        ])
      )
    ])
  )

describe("reconcile", () => {
  it.live(
    "finds and repairs events dropped: rows missing, stale, and for objects WorkOS deleted",
    () =>
      Effect.gen(function* () {
        const events = history(3000, 13)
        const next = random(5)
        const dropped = events.filter(() => next() < 0.1)
        const delivered = events.filter((e) => !dropped.includes(e))
        const store = yield* open()
        yield* deliverTo(store)(delivered)
        const lists = listsAfter(events)
        const before = yield* liveRows(store)
        expect(before).not.toEqual(expectedLive(lists))
        const listedAt = new Date(Date.parse(events.at(-1)!.created_at) + 1)
        const report = yield* Reconcile.reconcile(store, lists, listedAt)
        const found = Object.values(report).flatMap((f) => [...f.missing, ...f.changed, ...f.gone])
        expect(report.users!.missing.length + report.users!.changed.length).toBeGreaterThan(0)
        expect(found.length).toBeGreaterThan(0)
        expect(yield* liveRows(store)).toEqual(expectedLive(lists))
        // Once repaired, nothing drifts.
        const again = yield* Reconcile.reconcile(store, lists, new Date(listedAt.getTime() + 1))
        for (const f of Object.values(again)) {
          expect([...f.missing, ...f.changed, ...f.gone]).toEqual([])
        }
        expect(yield* statusText({ path: path.join(dir, `r-${n}.db`), prefix: "workos_" })).toMatch(
          /last reconcile: .*organizations: no drift/
        )
      }).pipe(Effect.scoped)
  )

  it.live(
    "finds an object changed without an event, and leaves a row an event changed after the listing",
    () =>
      Effect.gen(function* () {
        const events = history(500, 17)
        const store = yield* open()
        yield* deliverTo(store)(events)
        const lists = listsAfter(events)
        const [quiet, busy] = lists.users
        const changedQuietly = { ...quiet!, first_name: "Changed without an event" }
        lists.users = lists.users.map((u) => (u.id === quiet!.id ? changedQuietly : u))
        const listedAt = new Date(Date.parse(events.at(-1)!.created_at) + 10)
        // An event after the listing began: newer than the list.
        const after = {
          ...events.find((e) => e.event === "user.created")!,
          id: "event_zzzz_after",
          event: "user.updated",
          created_at: new Date(listedAt.getTime() + 5).toISOString(),
          data: { ...busy!, first_name: "Renamed after the listing" }
        } as Event.Any
        yield* deliverTo(store)([after])
        const report = yield* Reconcile.reconcile(store, lists, listedAt)
        expect(report.users!.changed).toEqual([quiet!.id])
        const users = yield* store.rows("users")
        expect(users.find((u) => u.id === quiet!.id)!.object.first_name).toBe(
          "Changed without an event"
        )
        expect(users.find((u) => u.id === busy!.id)!.object.first_name).toBe(
          "Renamed after the listing"
        )
        // A late event older than the repair does not undo it.
        const stale = {
          ...after,
          id: "event_0000_stale",
          created_at: events[0]!.created_at,
          data: quiet!
        }
        yield* deliverTo(store)([stale as Event.Any])
        expect(
          (yield* store.rows("users")).find((u) => u.id === quiet!.id)!.object.first_name
        ).toBe("Changed without an event")
      }).pipe(Effect.scoped)
  )

  it("brings back a row tombstoned only by its parent's delete when WorkOS lists it", () => {
    const row = {
      table: "directory_users" as const,
      id: "directory_user_1",
      object: { id: "directory_user_1", directory_id: "directory_1" },
      at: "2026-01-01T00:00:00.000Z",
      eventId: "event_1",
      deletedAt: "2026-01-02T00:00:00.000Z",
      deletedWith: "directory_1"
    }
    const listed = { id: "directory_user_1", directory_id: "directory_1" }
    const { findings, repairs } = Reconcile.compare(
      "directory_users",
      [row],
      [listed],
      "2026-02-01T00:00:00Z"
    )
    expect(findings.missing).toEqual(["directory_user_1"])
    expect(repairs).toMatchObject([{ id: "directory_user_1", deletedAt: null, object: listed }])
  })

  it("reports a row deleted here that WorkOS still lists, without bringing it back", () => {
    const row = {
      table: "users" as const,
      id: "user_1",
      object: { id: "user_1" },
      at: "2026-01-01T00:00:00.000Z",
      eventId: "event_1",
      deletedAt: "2026-01-01T00:00:00.000Z"
    }
    const { findings, repairs } = Reconcile.compare(
      "users",
      [row],
      [{ id: "user_1" }],
      "2026-02-01T00:00:00Z"
    )
    expect(findings.deletedButListed).toEqual(["user_1"])
    expect(repairs).toEqual([])
  })
})
