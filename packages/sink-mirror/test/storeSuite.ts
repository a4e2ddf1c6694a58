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
import { deliveries, history, reference } from "./workload.ts"

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

export const storeSuite = (name: string, open: Open, options: { readonly rounds: number }) =>
  describe(`${name} store`, () => {
    it.live(
      "holds what applying each event once in order gives, whatever the order and repeats",
      () =>
        Effect.gen(function* () {
          const events = history(4000, 11)
          const want = expected(events)
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
