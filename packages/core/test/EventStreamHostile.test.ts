/**
 * `EventStream` against servers that behave as real ones were seen to (the stand-in's
 * quirks): every test counts ids, and requests where a loop could hide.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { FetchHttpClient } from "effect/http"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
// Core cannot depend on @workos-relay/testing (it depends on core): the source.
import { WorkOSStandIn } from "../../testing/src/index.ts"
import { EventStream, WorkOS } from "../src/index.ts"

const clientLayer = (standIn: WorkOSStandIn.StandIn) =>
  WorkOS.layer({
    baseUrl: standIn.url,
    apiKey: Redacted.make(standIn.apiKey),
    retry: { baseDelay: "5 millis", maxDelay: "20 millis" }
  }).pipe(Layer.provide(FetchHttpClient.layer))

/** The ids of the events a stream gives until it ends (or `take` of them). */
const idsOf = <E>(
  standIn: WorkOSStandIn.StandIn,
  stream: Stream.Stream<EventStream.Element<any>, E, WorkOS.WorkOS>,
  take?: number
) =>
  (take === undefined ? stream : Stream.take(stream, take)).pipe(
    Stream.map((element) =>
      element._tag === "Event" ? element.event.id : `undecodable:${element.error.id}`
    ),
    Stream.runCollect,
    Effect.map((ids) => [...ids]),
    Effect.provide(clientLayer(standIn))
  )

const withStandIn = <A, E>(
  options: WorkOSStandIn.Options,
  f: (standIn: WorkOSStandIn.StandIn) => Effect.Effect<A, E>
) => Effect.scoped(Effect.flatMap(WorkOSStandIn.make(options), f))

const quiet = { pollInterval: "20 millis", reReadWindow: "0 millis" } as const

describe("EventStream against hostile servers", () => {
  it.live(
    "`latest` on a server that ignores `order` delivers only events created after the start",
    () =>
      withStandIn({ events: 300, quirks: { ignoreOrder: true, ignoreRange: true } }, (standIn) =>
        Effect.gen(function* () {
          const fiber = yield* idsOf(
            standIn,
            EventStream.make({ start: "latest", follow: true, ...quiet }),
            5
          ).pipe(Effect.forkChild)
          while (standIn.requests.length < 2) yield* Effect.sleep("5 millis")
          const appended = standIn.appendGenerated(5).map((e) => e.id)
          expect(yield* Fiber.join(fiber)).toEqual(appended)
        })
      )
  )

  it.live(
    "`since` on a server that ignores the range delivers exactly the events from then on",
    () =>
      withStandIn({ events: 400, quirks: { ignoreRange: true } }, (standIn) =>
        Effect.gen(function* () {
          const all = standIn.events()
          const since = all[250]!.created_at
          const ids = yield* idsOf(standIn, EventStream.make({ start: { since } }))
          expect(ids).toEqual(all.filter((e) => e.created_at >= since).map((e) => e.id))
        })
      )
  )

  it.live("a type filter the server ignores, or reads only as events[], is applied here", () =>
    withStandIn({ events: 400 }, (standIn) =>
      Effect.gen(function* () {
        const wanted = standIn
          .events()
          .filter((e) => e.event.startsWith("dsync.user."))
          .map((e) => e.id)
        for (const quirks of [
          { ignoreEventsFilter: true },
          { eventsFilterStyle: "brackets" as const }
        ]) {
          Object.assign(standIn.quirks, WorkOSStandIn.noQuirks, quirks)
          const ids = yield* idsOf(
            standIn,
            EventStream.make({ start: "earliest", events: ["dsync.user.*"] })
          )
          expect(ids).toEqual(wanted)
        }
      })
    )
  )

  for (const quirk of ["afterBackwards", "stuckAfter", "repeatLastEvent"] as const) {
    it.live(`${quirk}: every event once, in order, and no request loop`, () =>
      withStandIn({ events: 1000, quirks: { [quirk]: true } }, (standIn) =>
        Effect.gen(function* () {
          const all = standIn.events().map((e) => e.id)
          const ids = yield* idsOf(standIn, EventStream.make({ start: "earliest" }))
          expect(ids).toEqual(all)
          // 10 pages of 100; a cursor that goes back would cost ~1 request per event.
          expect(standIn.requests.length).toBeLessThanOrEqual(12)
        })
      )
    )
  }

  it.live("a following stream on a stuck cursor waits the poll interval between pages", () =>
    withStandIn({ events: 50, quirks: { stuckAfter: true, repeatLastEvent: true } }, (standIn) =>
      Effect.gen(function* () {
        const all = standIn.events().map((e) => e.id)
        const fiber = yield* idsOf(
          standIn,
          EventStream.make({ start: "earliest", follow: true, pollInterval: "100 millis" }),
          60
        ).pipe(Effect.forkChild)
        yield* Effect.sleep("500 millis")
        // Caught up after one page: about one poll per 100 ms, not a tight loop.
        expect(standIn.requests.length).toBeLessThanOrEqual(10)
        const appended = standIn.appendGenerated(10).map((e) => e.id)
        expect(yield* Fiber.join(fiber)).toEqual([...all, ...appended])
      })
    )
  )

  it.live("events committed late, out of id order, are delivered once each", () =>
    withStandIn(
      { events: 20, quirks: { visibilityDelayMs: 300, outOfOrderCommits: true } },
      (standIn) =>
        Effect.gen(function* () {
          const seeded = standIn.events().map((e) => e.id)
          const fiber = yield* idsOf(
            standIn,
            EventStream.make({
              start: "earliest",
              follow: true,
              pollInterval: "20 millis",
              reReadWindow: "1 second"
            }),
            20 + 200
          ).pipe(Effect.forkChild)
          const appended: Array<string> = []
          for (let i = 0; i < 20; i++) {
            appended.push(...standIn.appendGenerated(10).map((e) => e.id))
            yield* Effect.sleep("15 millis")
          }
          const ids = yield* Fiber.join(fiber)
          expect([...ids].sort()).toEqual([...seeded, ...appended].sort())
          expect(new Set(ids).size).toBe(ids.length)
        })
    )
  )

  it.live("without the re-read window, the same server makes a reader skip late events", () =>
    withStandIn(
      { events: 0, quirks: { visibilityDelayMs: 300, outOfOrderCommits: true } },
      (standIn) =>
        Effect.gen(function* () {
          // The control: proves the quirk bites, so the test above means something.
          const fiber = yield* idsOf(
            standIn,
            EventStream.make({ start: "earliest", follow: true, ...quiet })
          ).pipe(Effect.timeout("2 seconds"), Effect.option, Effect.forkChild)
          for (let i = 0; i < 20; i++) {
            standIn.appendGenerated(10)
            yield* Effect.sleep("15 millis")
          }
          yield* Fiber.join(fiber)
          const served = new Set(standIn.served.keys())
          expect(served.size).toBeLessThan(200)
        })
    )
  )

  it.live(
    "a cursor the server does not know is answered from its oldest: read forward, nothing old delivered",
    () =>
      withStandIn({ events: 600, quirks: { unknownAfterFromOldest: true } }, (standIn) =>
        Effect.gen(function* () {
          const all = standIn.events()
          // A cursor the filtered list does not hold: an event of another type.
          const cursor = all.find((e, i) => i > 300 && !e.event.startsWith("dsync."))!.id
          const wanted = all
            .filter((e) => e.id > cursor && e.event.startsWith("dsync."))
            .map((e) => e.id)
          const ids = yield* idsOf(
            standIn,
            EventStream.make({ start: { after: cursor }, events: ["dsync.*"] })
          )
          expect(ids).toEqual(wanted)
          expect(standIn.requests.length).toBeLessThan(20)
        })
      )
  )

  it.live("a cursor older than retention is reported as a possible gap, with its range", () =>
    withStandIn({ events: 300 }, (standIn) =>
      Effect.gen(function* () {
        const all = standIn.events()
        // The seeded week, with a retention of three days: the first event's cursor is too old.
        const gaps: Array<EventStream.Gap> = []
        const ids = yield* idsOf(
          standIn,
          EventStream.make({
            start: { after: all[0]!.id, createdAt: all[0]!.created_at },
            retention: "3 days",
            onGap: (gap) => Effect.sync(() => gaps.push(gap))
          })
        )
        expect(ids).toEqual(all.slice(1).map((e) => e.id))
        expect(gaps).toHaveLength(1)
        expect(gaps[0]).toMatchObject({
          from: Date.parse(all[0]!.created_at),
          to: Date.parse(all[1]!.created_at),
          cursor: all[0]!.id
        })
        const stopped = yield* Effect.flip(
          idsOf(
            standIn,
            EventStream.make({ start: { after: all[0]!.id }, retention: "3 days", stopAtGap: true })
          )
        )
        expect(stopped._tag).toBe("GapError")
      })
    )
  )

  it.live("the hostile preset: following while events arrive, every event once", () =>
    withStandIn({ events: 300, quirks: WorkOSStandIn.hostile }, (standIn) =>
      Effect.gen(function* () {
        const seeded = standIn.events().map((e) => e.id)
        const fiber = yield* idsOf(
          standIn,
          EventStream.make({
            start: "earliest",
            follow: true,
            pollInterval: "50 millis",
            reReadWindow: "3 seconds"
          }),
          300 + 150
        ).pipe(Effect.forkChild)
        const appended: Array<string> = []
        for (let i = 0; i < 15; i++) {
          appended.push(...standIn.appendGenerated(10).map((e) => e.id))
          yield* Effect.sleep("40 millis")
        }
        const ids = yield* Fiber.join(fiber)
        expect([...ids].sort()).toEqual([...seeded, ...appended].sort())
        expect(new Set(ids).size).toBe(ids.length)
      })
    )
  )

  it.live(
    "a cursor WorkOS refuses (a 4xx naming `after`) is a gap from its time: read again from there, nothing lost or repeated",
    () =>
      withStandIn({ events: 300 }, (standIn) =>
        Effect.gen(function* () {
          const all = standIn.events()
          const refusal = {
            status: 422,
            body: JSON.stringify({
              message: "Invalid cursor.",
              errors: [{ code: "invalid_cursor", field: "after" }]
            })
          }
          const gaps: Array<EventStream.Gap> = []
          standIn.faults.next(refusal)
          const ids = yield* idsOf(
            standIn,
            EventStream.make({
              start: { after: all[100]!.id, createdAt: all[100]!.created_at },
              onGap: (gap) => Effect.sync(() => gaps.push(gap))
            })
          )
          expect(ids).toEqual(all.slice(101).map((e) => e.id))
          expect(gaps).toEqual([
            expect.objectContaining({
              from: Date.parse(all[100]!.created_at),
              cursor: all[100]!.id
            })
          ])
          // The read after the refusal asked from the cursor's time, without a cursor.
          const retry = standIn.requests[1]!.url.searchParams
          expect(retry.get("after")).toBeNull()
          expect(retry.get("range_start")).toBe(all[100]!.created_at)
          standIn.faults.next(refusal)
          const stopped = yield* Effect.flip(
            idsOf(standIn, EventStream.make({ start: { after: all[100]!.id }, stopAtGap: true }))
          )
          expect(stopped._tag).toBe("GapError")
        })
      )
  )
})
