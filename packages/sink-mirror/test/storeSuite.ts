/**
 * What every store must do, run against SQLite and Postgres: merge row versions as
 * `Mapping.merge` does, in any order and with any repeats, and keep its bookkeeping.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Event } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Mapping from "../src/Mapping.ts"
import { deliverTo } from "../src/Sink.ts"
import type { Shape } from "../src/Store.ts"
import { type TableName, tableNames } from "../src/Tables.ts"
import { deliveries, history, random, reference } from "./workload.ts"

/** Opens a fresh, empty store (a new file, or a new schema). */
export type Open = (options?: {
  readonly prefix?: string
}) => Effect.Effect<Shape, unknown, Scope.Scope>

/** JSON with sorted keys: Postgres's jsonb does not keep the order of keys. */
export const canonical = (value: unknown): string =>
  JSON.stringify(value, (_, v) =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, v[k]])
        )
      : v
  )

const comparable = (row: Mapping.Row) => ({ ...row, object: canonical(row.object) })

/** Every table's rows, comparable. */
export const dump = (store: Shape) =>
  Effect.gen(function* () {
    const out: Partial<Record<TableName, Array<unknown>>> = {}
    for (const name of tableNames) out[name] = (yield* store.rows(name)).map(comparable)
    return out
  })

export const expected = (events: ReadonlyArray<Event.Any>) => {
  const ref = reference(events)
  const out: Partial<Record<TableName, Array<unknown>>> = {}
  for (const name of tableNames) out[name] = (ref.get(name) ?? []).map(comparable)
  return out
}

const deliverAll = (store: Shape, batches: ReadonlyArray<ReadonlyArray<Event.Any>>) =>
  Effect.gen(function* () {
    for (const batch of batches) {
      const outcomes = yield* deliverTo(store)(batch)
      expect(outcomes.every((o) => o._tag === "Delivered")).toBe(true)
    }
  })

const event = (type: string, id: string, at: string, data: Record<string, unknown> = {}) => {
  const base = (examples as any)[type]
  return { ...base, id, created_at: at, data: { ...base.data, ...data } } as Event.Any
}

/**
 * Parents deleted without an event for each child (as WorkOS does), children changed
 * before and after, an own delete before the cascade, and a bystander.
 */
export const cascadeScenario = (): ReadonlyArray<Event.Any> => {
  const t = (n: number) => `2026-02-0${n}T00:00:00.000Z`
  const dirUser = (id: string, directory: string, extra: Record<string, unknown> = {}) => ({
    id,
    directory_id: directory,
    ...extra
  })
  const group = { id: "directory_group_g1", directory_id: "directory_d1" }
  return [
    event("organization.created", "event_01", t(1), {
      id: "org_o1",
      domains: [
        {
          ...(examples as any)["organization.created"].data.domains[0],
          id: "org_domain_o1",
          organization_id: "org_o1"
        }
      ]
    }),
    event("organization_membership.created", "event_02", t(2), {
      id: "om_m1",
      organization_id: "org_o1"
    }),
    event("organization_membership.created", "event_03", t(2), {
      id: "om_m2",
      organization_id: "org_o2"
    }),
    event("dsync.activated", "event_04", t(1), { id: "directory_d1" }),
    event("dsync.activated", "event_05", t(1), { id: "directory_d2" }),
    event("dsync.user.created", "event_06", t(2), dirUser("directory_user_u1", "directory_d1")),
    event("dsync.user.created", "event_07", t(2), dirUser("directory_user_u2", "directory_d2")),
    event("dsync.group.created", "event_08", t(2), group),
    event("dsync.group.user_added", "event_09", t(3), {
      directory_id: "directory_d1",
      user: dirUser("directory_user_u1", "directory_d1"),
      group
    }),
    event(
      "dsync.user.updated",
      "event_10",
      t(3),
      dirUser("directory_user_u3", "directory_d1", { first_name: "Before" })
    ),
    event("dsync.user.deleted", "event_11", t(3), dirUser("directory_user_u4", "directory_d1")),
    event("organization.deleted", "event_12", t(4), { id: "org_o1", domains: [] }),
    event("dsync.deleted", "event_13", t(5), { id: "directory_d1" }),
    // After the directory's delete: stays as it says.
    event(
      "dsync.user.updated",
      "event_14",
      t(6),
      dirUser("directory_user_u3", "directory_d1", { first_name: "After" })
    )
  ]
}

export const storeSuite = (name: string, open: Open, options: { readonly rounds: number }) =>
  describe(`${name} store`, () => {
    it.live(
      "holds what applying each event once in order gives, whatever the order and repeats",
      () =>
        Effect.gen(function* () {
          const events = history(4000, 11)
          const want = expected(events)
          // Not vacuous: the history's deletes cascade into each kind of child.
          for (const table of [
            "organization_memberships",
            "directory_users",
            "directory_groups",
            "directory_group_memberships"
          ] as const)
            expect(
              (want[table] as Array<{ deletedWith: string | null }>).filter(
                (r) => r.deletedWith !== null
              ).length,
              table
            ).toBeGreaterThan(0)
          for (let seed = 1; seed <= options.rounds; seed++) {
            const store = yield* open()
            yield* deliverAll(store, deliveries(events, seed, { window: 5 + seed * 10 }))
            expect(yield* dump(store)).toEqual(want)
          }
        }).pipe(Effect.scoped),
      120_000
    )

    it.live(
      "applies each event once, one batch per event, to the same tables",
      () =>
        Effect.gen(function* () {
          const events = history(300, 5)
          const store = yield* open()
          yield* deliverAll(
            store,
            events.map((e) => [e])
          )
          const once = yield* dump(store)
          expect(once).toEqual(expected(events))
          // Delivered all over again: nothing changes.
          yield* deliverAll(store, [events])
          expect(yield* dump(store)).toEqual(once)
        }).pipe(Effect.scoped),
      60_000
    )

    it.live("ignores an event older than the row's last change; a delete is not undone", () =>
      Effect.gen(function* () {
        const store = yield* open()
        const created = event("user.created", "event_1", "2026-01-01T00:00:00.000Z", {
          first_name: "A"
        })
        const renamed = event("user.updated", "event_3", "2026-01-03T00:00:00.000Z", {
          first_name: "C"
        })
        const stale = event("user.updated", "event_2", "2026-01-02T00:00:00.000Z", {
          first_name: "B"
        })
        const deleted = event("user.deleted", "event_4", "2026-01-04T00:00:00.000Z", {
          first_name: "C"
        })
        const late = event("user.updated", "event_5", "2026-01-05T00:00:00.000Z", {
          first_name: "D"
        })
        yield* deliverAll(store, [[created, renamed], [stale]])
        let [row] = yield* store.rows("users")
        expect(row).toMatchObject({ eventId: "event_3", deletedAt: null })
        expect(row!.object.first_name).toBe("C")
        yield* deliverAll(store, [[deleted], [stale, renamed], [late]])
        ;[row] = yield* store.rows("users")
        expect(row!.deletedAt).toBe("2026-01-04T00:00:00.000Z")
        expect(yield* store.counts).toMatchObject({ users: { live: 0, deleted: 1 } })
      }).pipe(Effect.scoped)
    )

    it.live(
      "cascades a parent's delete to its children as of the delete, whatever the order of delivery",
      () =>
        Effect.gen(function* () {
          const events = cascadeScenario()
          const want = expected(events)
          const next = random(3)
          for (let round = 0; round < options.rounds * 4; round++) {
            // Shuffled, cut into batches of 1 to 4, some events twice.
            const shuffled = [...events].sort(() => next() - 0.5)
            const batches: Array<Array<Event.Any>> = []
            for (let i = 0; i < shuffled.length; ) {
              const n = 1 + Math.floor(next() * 4)
              batches.push(shuffled.slice(i, i + n))
              if (next() < 0.3) batches.push([shuffled[i]!])
              i += n
            }
            const store = yield* open()
            yield* deliverAll(store, batches)
            expect(yield* dump(store)).toEqual(want)
          }
          const store = yield* open()
          yield* deliverAll(store, [events])
          const row = (table: TableName, id: string) =>
            Effect.map(store.rows(table), (rows) => rows.find((r) => r.id === id)!)
          const at4 = "2026-02-04T00:00:00.000Z"
          const at5 = "2026-02-05T00:00:00.000Z"
          // The organization's domain and membership; not another organization's.
          expect(yield* row("organization_domains", "org_domain_o1")).toMatchObject({
            deletedAt: at4
          })
          expect(yield* row("organization_memberships", "om_m1")).toMatchObject({
            deletedAt: at4,
            deletedWith: "org_o1",
            eventId: "event_02"
          })
          expect(yield* row("organization_memberships", "om_m2")).toMatchObject({ deletedAt: null })
          // The directory's users, groups and group memberships; not another directory's.
          for (const [table, id] of [
            ["directory_users", "directory_user_u1"],
            ["directory_groups", "directory_group_g1"],
            ["directory_group_memberships", "directory_group_g1:directory_user_u1"]
          ] as const)
            expect(yield* row(table, id), id).toMatchObject({
              deletedAt: at5,
              deletedWith: "directory_d1"
            })
          expect(yield* row("directory_users", "directory_user_u2")).toMatchObject({
            deletedAt: null
          })
          // Its own delete, earlier, stays its own; a user changed after the delete stays live.
          expect(yield* row("directory_users", "directory_user_u4")).toMatchObject({
            deletedAt: "2026-02-03T00:00:00.000Z",
            deletedWith: null
          })
          const u3 = yield* row("directory_users", "directory_user_u3")
          expect(u3).toMatchObject({ deletedAt: null, deletedWith: null, eventId: "event_14" })
          expect(u3.object.first_name).toBe("After")
        }).pipe(Effect.scoped),
      60_000
    )

    it.live(
      "a group membership added after its group's delete is live; one from before is not",
      () =>
        Effect.gen(function* () {
          const store = yield* open()
          const group = { id: "directory_group_g", directory_id: "directory_d" }
          const user = (id: string) => ({ id, directory_id: "directory_d" })
          const added = (id: string, n: string, at: string) =>
            event("dsync.group.user_added", id, at, {
              directory_id: "directory_d",
              user: user(n),
              group
            })
          const before = added("event_1", "directory_user_a", "2026-03-01T00:00:00.000Z")
          const deleted = event("dsync.group.deleted", "event_2", "2026-03-02T00:00:00.000Z", group)
          const after = added("event_3", "directory_user_b", "2026-03-03T00:00:00.000Z")
          // Delivered backwards.
          yield* deliverAll(store, [[after], [deleted], [before]])
          const rows = yield* store.rows("directory_group_memberships")
          expect(rows.map((r) => [r.id, r.deletedAt, r.deletedWith])).toEqual([
            ["directory_group_g:directory_user_a", "2026-03-02T00:00:00.000Z", "directory_group_g"],
            ["directory_group_g:directory_user_b", null, null]
          ])
          expect(yield* dump(store)).toEqual(expected([before, deleted, after]))
        }).pipe(Effect.scoped)
    )

    it.live("records the last event applied", () =>
      Effect.gen(function* () {
        const store = yield* open()
        const events = history(20, 3)
        yield* deliverAll(store, [events])
        expect(yield* store.meta("last_event_id")).toBe(events.at(-1)!.id)
        expect(yield* store.meta("last_event_at")).toBe(events.at(-1)!.created_at)
      }).pipe(Effect.scoped)
    )

    it.live("names its tables with the configured prefix", () =>
      Effect.gen(function* () {
        const a = yield* open({ prefix: "a_" })
        const b = yield* open({ prefix: "" })
        yield* deliverAll(a, [history(50, 2)])
        expect((yield* a.counts).organizations.live).toBeGreaterThan(0)
        expect((yield* b.counts).organizations.live).toBe(0)
      }).pipe(Effect.scoped)
    )
  })
