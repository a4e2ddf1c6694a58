import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { FetchHttpClient } from "effect/http"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
// The stand-in lives in @workos-relay/testing, which depends on core; core cannot
// depend on it back (a cycle the workspace tools refuse), so its tests import the source.
import { WorkOSStandIn } from "../../testing/src/index.ts"
import { Event, EventStream, WorkOS } from "../src/index.ts"

const clientLayer = (standIn: WorkOSStandIn.StandIn) =>
  WorkOS.layer({
    baseUrl: standIn.url,
    apiKey: Redacted.make(standIn.apiKey),
    retry: { baseDelay: "5 millis", maxDelay: "20 millis" }
  }).pipe(Layer.provide(FetchHttpClient.layer))

/** Runs a stream against a stand-in to its end (or `take` elements) and gives its elements. */
const collect = <E>(
  standIn: WorkOSStandIn.StandIn,
  stream: Stream.Stream<EventStream.Element<any>, E, WorkOS.WorkOS>,
  take?: number
) =>
  (take === undefined ? stream : Stream.take(stream, take)).pipe(
    Stream.runCollect,
    Effect.provide(clientLayer(standIn))
  )

const eventIds = (elements: ReadonlyArray<EventStream.Element<any>>): Array<string> =>
  elements.map((element) => {
    if (element._tag !== "Event") throw new Error(`not an event: ${element.error.message}`)
    expect(element.cursor).toBe(element.event.id)
    return element.event.id
  })

/** Waits (in real time) until the stand-in has received `count` requests. */
const requestsReceived = (standIn: WorkOSStandIn.StandIn, count: number) =>
  Effect.gen(function* () {
    while (standIn.requests.length < count) yield* Effect.sleep("5 millis")
  })

/** A stand-in for one test: appends and faults stay in it. */
const withStandIn = <A, E>(
  options: WorkOSStandIn.Options,
  f: (standIn: WorkOSStandIn.StandIn) => Effect.Effect<A, E>
) => Effect.scoped(Effect.flatMap(WorkOSStandIn.make(options), f))

describe("EventStream", () => {
  let big: WorkOSStandIn.StandIn
  let all: Array<string>
  beforeAll(async () => {
    big = await WorkOSStandIn.start({ events: 5000 })
    all = big.events().map((event) => event.id)
  })
  afterAll(() => big.close())

  it.live("pages over thousands of events, each exactly once, in order", () =>
    Effect.gen(function* () {
      const before = big.requests.length
      const elements = yield* collect(big, EventStream.make({ start: "earliest" }))
      expect(eventIds(elements)).toEqual(all)
      const requests = big.requests.slice(before)
      // 5000 events, 100 a page: the 50th page says it is the last.
      expect(requests.length).toBe(50)
      for (const request of requests) {
        expect(request.url.searchParams.get("order")).toBe("asc")
        expect(request.url.searchParams.get("limit")).toBe("100")
      }
      expect(requests[0]!.url.searchParams.has("after")).toBe(false)
      expect(requests[1]!.url.searchParams.get("after")).toBe(all[99])
    })
  )

  it.live("restarting from any cursor continues exactly after it", () =>
    Effect.gen(function* () {
      for (const index of [0, 1, 99, 100, 2500, 4998, 4999]) {
        const elements = yield* collect(
          big,
          EventStream.make({ start: { after: all[index]! }, pageSize: 73 })
        )
        expect(eventIds(elements), `after #${index}`).toEqual(all.slice(index + 1))
      }
    })
  )

  it.live("stitched runs, each stopped at a random point, give every event once", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      let start: EventStream.Start = "earliest"
      let cursor: string | undefined
      while (seen.length < all.length) {
        const take = 1 + Math.floor(Math.random() * 900)
        const elements: ReadonlyArray<EventStream.Element> = yield* collect(
          big,
          EventStream.make({ start }),
          take
        )
        seen.push(...eventIds(elements))
        cursor = elements[elements.length - 1]!.cursor
        start = { after: cursor! }
      }
      expect(seen).toEqual(all)
    })
  )

  it.live("starts at a timestamp", () =>
    Effect.gen(function* () {
      const events = big.events()
      const since = events[4321]!.created_at
      const elements = yield* collect(big, EventStream.make({ start: { since } }))
      expect(eventIds(elements)).toEqual(all.slice(4321))
      const fromDate = yield* collect(
        big,
        EventStream.make({ start: { since: new Date(Date.parse(since) + 1) } })
      )
      expect(eventIds(fromDate)).toEqual(all.slice(4322))
    })
  )

  it.live("filters by type patterns, sent as an explicit type list", () =>
    Effect.gen(function* () {
      const before = big.requests.length
      const elements = yield* collect(
        big,
        EventStream.make({ start: "earliest", events: ["dsync.user.*", "user.created"] })
      )
      const expected = big
        .events()
        .filter((e) => e.event.startsWith("dsync.user.") || e.event === "user.created")
      expect(eventIds(elements)).toEqual(expected.map((e) => e.id))
      expect(big.requests[before]!.url.searchParams.get("events")!.split(",").sort()).toEqual(
        ["dsync.user.created", "dsync.user.deleted", "dsync.user.updated", "user.created"].sort()
      )
    })
  )

  it.live("checks the filters again when the server ignores them", () =>
    withStandIn({ events: 1200 }, (standIn) =>
      Effect.gen(function* () {
        standIn.quirks.ignoreEventsFilter = true
        const organization = standIn.organizations[2]!
        const elements = yield* collect(
          standIn,
          EventStream.make({ start: "earliest", events: ["organization_membership.*"] })
        )
        const expected = standIn
          .events()
          .filter((e) => e.event.startsWith("organization_membership."))
        expect(expected.length).toBeGreaterThan(10)
        expect(eventIds(elements)).toEqual(expected.map((e) => e.id))

        const ofOrganization = yield* collect(
          standIn,
          EventStream.make({ start: "earliest", organizationId: organization })
        )
        expect(ofOrganization.length).toBeGreaterThan(100)
        for (const element of ofOrganization) {
          const data = (element as EventStream.Received).event.data as any
          expect(data.organization_id ?? data.id).toBe(organization)
        }
      })
    )
  )

  it.live("follows a server that filters after the limit: short and empty pages", () =>
    withStandIn({ events: 2000 }, (standIn) =>
      Effect.gen(function* () {
        standIn.quirks.filterAfterLimit = true
        const before = standIn.requests.length
        const elements = yield* collect(
          standIn,
          EventStream.make({ start: "earliest", events: ["user.*"], pageSize: 50 })
        )
        const expected = standIn.events().filter((e) => e.event.startsWith("user."))
        expect(eventIds(elements)).toEqual(expected.map((e) => e.id))
        // 2000 events walked 50 at a time, matches or not.
        expect(standIn.requests.length - before).toBe(40)
      })
    )
  )

  it.live("an event that fails to decode is an element with its cursor; the stream goes on", () =>
    withStandIn({ events: 3 }, (standIn) =>
      Effect.gen(function* () {
        const [broken, unknown, after] = standIn.append([
          WorkOSStandIn.brokenEvent("user.created"),
          WorkOSStandIn.unknownTypeEvent("widget.assembled"),
          { event: "user.updated" }
        ])
        const elements = yield* collect(standIn, EventStream.make({ start: "earliest" }))
        expect(elements.length).toBe(6)
        const failed = elements[3]!
        expect(failed._tag).toBe("Undecodable")
        if (failed._tag !== "Undecodable") return
        expect(failed.cursor).toBe(broken!.id)
        expect(failed.error).toMatchObject({ id: broken!.id, type: "user.created" })
        expect(failed.error.raw).toEqual(broken)
        const unknownElement = elements[4] as EventStream.Received
        expect(unknownElement.event.id).toBe(unknown!.id)
        expect(Event.isKnown(unknownElement.event)).toBe(false)
        expect((elements[5] as EventStream.Received).event.id).toBe(after!.id)

        // Resuming from the failed event's cursor goes on after it.
        const resumed = yield* collect(
          standIn,
          EventStream.make({ start: { after: failed.cursor! } })
        )
        expect(eventIds(resumed)).toEqual([unknown!.id, after!.id])

        // A filter drops a type it does not select, known or not, broken or not.
        const filtered = yield* collect(
          standIn,
          EventStream.make({ start: "earliest", events: ["user.updated"] })
        )
        expect(eventIds(filtered)).toEqual([after!.id])
      })
    )
  )

  it.live("rides out faults mid-stream without skipping or repeating", () =>
    withStandIn({ events: 1000 }, (standIn) =>
      Effect.gen(function* () {
        const fiber = yield* collect(
          standIn,
          EventStream.make({ start: "earliest", pageSize: 50 })
        ).pipe(Effect.forkChild)
        standIn.faults.next(
          { status: 429, retryAfter: 0 },
          { status: 500 },
          { malformedJson: true },
          { disconnect: true },
          { status: 503 },
          { delay: 50 }
        )
        const elements = yield* Fiber.join(fiber)
        expect(eventIds(elements)).toEqual(standIn.events().map((e) => e.id))
        expect(standIn.faults.pending()).toBe(0)
      })
    )
  )

  it.live("follow mode picks up appended events, never repeating one", () =>
    withStandIn({ events: 250 }, (standIn) =>
      Effect.gen(function* () {
        const seeded = standIn.events().map((e) => e.id)
        const fiber = yield* collect(
          standIn,
          EventStream.make({ start: "earliest", follow: true, pollInterval: "20 millis" }),
          250 + 30
        ).pipe(Effect.forkChild)
        // Three pages read the seeded events; wait for three polls after them.
        while (standIn.requests.length < 3 + 3) yield* Effect.sleep("5 millis")
        // Then events in three batches, each picked up by a later poll.
        const appended: Array<string> = []
        for (const count of [1, 9, 20]) {
          appended.push(...standIn.appendGenerated(count).map((e) => e.id))
          yield* Effect.sleep("60 millis")
        }
        const elements = yield* Fiber.join(fiber)
        expect(eventIds(elements)).toEqual([...seeded, ...appended])
      })
    )
  )

  it.live("`latest` streams only events newer than now", () =>
    withStandIn({ events: 500 }, (standIn) =>
      Effect.gen(function* () {
        const fiber = yield* collect(
          standIn,
          EventStream.make({ start: "latest", follow: true, pollInterval: "20 millis" }),
          5
        ).pipe(Effect.forkChild)
        // No probe for "the newest event" (a server may ignore `order`): events from now on.
        const before = Date.now()
        yield* requestsReceived(standIn, 2)
        const first = standIn.requests[0]!.url.searchParams
        expect(first.get("order")).toBe("asc")
        expect(first.get("after")).toBeNull()
        expect(Date.parse(first.get("range_start")!)).toBeGreaterThanOrEqual(before - 1000)
        const appended = standIn.appendGenerated(5).map((e) => e.id)
        expect(eventIds(yield* Fiber.join(fiber))).toEqual(appended)
      })
    )
  )

  it.live("`latest` on an empty stream waits for the first event", () =>
    withStandIn({ events: 0 }, (standIn) =>
      Effect.gen(function* () {
        const fiber = yield* collect(
          standIn,
          EventStream.make({ start: "latest", follow: true, pollInterval: "20 millis" }),
          2
        ).pipe(Effect.forkChild)
        yield* requestsReceived(standIn, 2)
        const appended = standIn.appendGenerated(2).map((e) => e.id)
        expect(eventIds(yield* Fiber.join(fiber))).toEqual(appended)
      })
    )
  )

  it.live("fails at once on a pattern that matches no type, before any request", () =>
    withStandIn({ events: 1 }, (standIn) =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          collect(standIn, EventStream.make({ start: "earliest", events: ["dsync.usr.*"] }))
        )
        expect(error).toMatchObject({ _tag: "UnknownPatternError", pattern: "dsync.usr.*" })
        expect(standIn.requests.length).toBe(0)
      })
    )
  )

  it.live("fails with WorkOS's error on a wrong key", () =>
    withStandIn({ events: 1, apiKey: "sk_test_other" }, (standIn) =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          EventStream.make({ start: "earliest" }).pipe(
            Stream.runCollect,
            Effect.provide(clientLayer({ ...standIn, apiKey: "sk_test_wrong" }))
          )
        )
        expect(error).toMatchObject({ _tag: "WorkOSApiError", status: 401 })
        expect(standIn.requests.length).toBe(1)
      })
    )
  )
})
