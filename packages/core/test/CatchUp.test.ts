/**
 * Parallel catch-up against the stand-in, hostile settings included: every test
 * counts ids at the destination (duplicates counted) and checks their order.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { WorkOSStandIn } from "../../testing/src/index.ts"
import { CatchUp, type EventStream, RequestBudget, WorkOS } from "../src/index.ts"

const client = (standIn: WorkOSStandIn.StandIn, budget?: RequestBudget.RequestBudget) =>
  WorkOS.makeNode({
    apiKey: Redacted.make(standIn.apiKey),
    baseUrl: standIn.url,
    timeout: "10 seconds",
    retry: { times: 30, baseDelay: "5 millis", maxDelay: "50 millis", maxRetryAfter: "3 seconds" },
    budget
  })

/** Ten events in every whole second from 40 minutes ago: slice edges (whole seconds) fall on ten events of one millisecond. */
const burstsOfTen = (count: number) => {
  const base = Math.floor((Date.now() - 40 * 60_000) / 1000) * 1000
  return {
    events: count,
    seedTimes: (i: number) => base + Math.floor(i / 10) * 1000
  }
}

const sliced: CatchUp.Options = {
  minBehind: "1 minute",
  minEvents: 200,
  sliceEvents: 200,
  slices: 6,
  sliceBuffer: 300
}

const idOf = (element: EventStream.Element) =>
  element._tag === "Event" ? element.event.id : `undecodable:${element.error.id}`

/** Every id once, in the order the stand-in made them. */
const expectEachOnceInOrder = (got: ReadonlyArray<string>, expected: ReadonlyArray<string>) => {
  const counts = new Map<string, number>()
  for (const id of got) counts.set(id, (counts.get(id) ?? 0) + 1)
  const repeated = [...counts].filter(([, n]) => n > 1)
  const missing = expected.filter((id) => !counts.has(id))
  expect({ repeated: repeated.length, missing: missing.length }).toEqual({
    repeated: 0,
    missing: 0
  })
  expect(got).toEqual(expected)
}

const collect = (
  standIn: WorkOSStandIn.StandIn,
  options: EventStream.Options,
  catchUp: CatchUp.Options,
  budget?: RequestBudget.RequestBudget
) =>
  Effect.gen(function* () {
    const workos = yield* client(standIn, budget)
    const elements = yield* CatchUp.make(options, catchUp).pipe(
      Stream.provideService(WorkOS.WorkOS, workos),
      Stream.runCollect
    )
    return [...elements].map(idOf)
  })

describe("CatchUp", () => {
  it.live(
    "reads a long backlog in slices at once: each event once, in order, edges of one millisecond included",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const standIn = yield* WorkOSStandIn.make({
            ...burstsOfTen(6_000),
            network: { latencyMs: 5, jitterMs: 5 }
          })
          const progress = new CatchUp.Progress()
          const ids = yield* collect(standIn, { start: "earliest" }, { ...sliced, progress })
          expectEachOnceInOrder(
            ids,
            standIn.events().map((e) => e.id)
          )
          expect(progress.runs).toBe(1)
          expect(progress.slicesDone).toBeGreaterThan(10)
          // Slices overlapped: more requests were in flight at once than one reader makes.
          const rangeStarts = standIn.requests.filter((r) => r.url.searchParams.has("range_start"))
          expect(rangeStarts.length).toBeGreaterThan(10)
          expect(progress.active).toBe(false)
        })
      )
  )

  it.live(
    "opens more than two slices only while the process has time to spare",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          /** The most slices open at once, with `busyMs` of synchronous work per page handed on. */
          const mostOpen = (latencyMs: number, busyMs: number) =>
            Effect.scoped(
              Effect.gen(function* () {
                const standIn = yield* WorkOSStandIn.make({
                  ...burstsOfTen(4_000),
                  network: { latencyMs, jitterMs: 0 }
                })
                const progress = new CatchUp.Progress()
                const workos = yield* client(standIn)
                let most = 0
                const ids: Array<string> = []
                yield* CatchUp.make({ start: "earliest" }, { ...sliced, progress }).pipe(
                  Stream.provideService(WorkOS.WorkOS, workos),
                  Stream.runForEachArray((page) =>
                    Effect.sync(() => {
                      const until = performance.now() + busyMs
                      while (performance.now() < until);
                      most = Math.max(most, progress.slicesOpen)
                      for (const element of page) ids.push(idOf(element))
                    })
                  )
                )
                expectEachOnceInOrder(
                  ids,
                  standIn.events().map((e) => e.id)
                )
                return most
              })
            )
          // WorkOS far away, the process idle while it waits: slices fill the time.
          expect(yield* mostOpen(30, 0)).toBeGreaterThan(2)
          // WorkOS at hand, the process busy with each page: more slices would only read ahead.
          expect(yield* mostOpen(0, 4)).toBeLessThanOrEqual(2)
        })
      ),
    30_000
  )

  it.live(
    "resumes from a cursor in the middle (a checkpoint), handing on exactly what follows it",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const standIn = yield* WorkOSStandIn.make(burstsOfTen(4_000))
          const all = standIn.events()
          const from = all[1234]!
          const progress = new CatchUp.Progress()
          const ids = yield* collect(
            standIn,
            { start: { after: from.id, createdAt: from.created_at } },
            { ...sliced, progress }
          )
          expectEachOnceInOrder(
            ids,
            all.slice(1235).map((e) => e.id)
          )
          expect(progress.runs).toBe(1)
        })
      )
  )

  it.live(
    "servers that ignore range_end or drop it with after, send after backwards, stuck or repeated: each event once, in order",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const standIn = yield* WorkOSStandIn.make({
            ...burstsOfTen(3_000),
            quirks: { ...WorkOSStandIn.hostile, ignoreRange: false }
          })
          const progress = new CatchUp.Progress()
          const ids = yield* collect(
            standIn,
            { start: "earliest", reReadWindow: "2 seconds" },
            { ...sliced, progress }
          )
          expectEachOnceInOrder(
            ids,
            standIn.events().map((e) => e.id)
          )
          expect(progress.runs).toBe(1)
          expect(progress.refused).toBe(false)
        })
      )
  )

  it.live(
    "a server that ignores range_start is read sequentially instead: each event once, in order",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const standIn = yield* WorkOSStandIn.make({
            ...burstsOfTen(2_000),
            quirks: WorkOSStandIn.hostile
          })
          const progress = new CatchUp.Progress()
          const ids = yield* collect(
            standIn,
            { start: "earliest", reReadWindow: "2 seconds" },
            { ...sliced, progress }
          )
          expectEachOnceInOrder(
            ids,
            standIn.events().map((e) => e.id)
          )
          expect(progress.refused).toBe(true)
          // Never sliced again for this source.
          const again = yield* collect(standIn, { start: "earliest" }, { ...sliced, progress })
          expect(again.length).toBe(2_000)
          expect(progress.runs).toBe(1)
        })
      )
  )

  it.live(
    "late, out-of-order commits near the end of the catch-up: followed on, each event once",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const standIn = yield* WorkOSStandIn.make({
            ...burstsOfTen(2_000),
            quirks: { visibilityDelayMs: 1_500, outOfOrderCommits: true }
          })
          const workos = yield* client(standIn)
          const got: Array<string> = []
          const fiber = yield* CatchUp.make(
            {
              start: "earliest",
              follow: true,
              pollInterval: "50 millis",
              reReadWindow: "4 seconds"
            },
            { ...sliced, margin: "3 seconds" }
          ).pipe(
            Stream.provideService(WorkOS.WorkOS, workos),
            Stream.runForEach((element) => Effect.sync(() => got.push(idOf(element)))),
            Effect.forkChild
          )
          // Events keep arriving while the slices are read, each visible up to 1.5 s late.
          for (let i = 0; i < 30; i++) {
            standIn.appendGenerated(5)
            yield* Effect.sleep("40 millis")
          }
          const expected = standIn.events().map((e) => e.id)
          while (got.length < expected.length) yield* Effect.sleep("50 millis")
          yield* Effect.sleep("300 millis")
          yield* Fiber.interrupt(fiber)
          const counts = new Map<string, number>()
          for (const id of got) counts.set(id, (counts.get(id) ?? 0) + 1)
          expect([...counts.values()].filter((n) => n > 1).length).toBe(0)
          expect(expected.filter((id) => !counts.has(id))).toEqual([])
          expect(got.length).toBe(expected.length)
        })
      )
  )

  it.live(
    "a 429 storm while catching up: the budget backs off and every event arrives once, in order",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const standIn = yield* WorkOSStandIn.make({
            ...burstsOfTen(3_000),
            network: { latencyMs: 2, jitterMs: 3, rateLimit: { requests: 15, windowMs: 1000 } }
          })
          const budget = RequestBudget.make({ maxPerMinute: 3_000, recoveryMs: 3_000 })
          const ids = yield* collect(standIn, { start: "earliest" }, sliced, budget)
          expectEachOnceInOrder(
            ids,
            standIn.events().map((e) => e.id)
          )
          expect(standIn.throttled()).toBeGreaterThan(0)
          expect(budget.stats().throttled).toBe(standIn.throttled())
        })
      )
  )

  it.live("a reading close to now is not sliced", () =>
    Effect.scoped(
      Effect.gen(function* () {
        // 500 events over the last 4 minutes: few, and recent.
        const base = Date.now() - 4 * 60_000
        const standIn = yield* WorkOSStandIn.make({
          events: 500,
          seedTimes: (i) => base + i * 400
        })
        const progress = new CatchUp.Progress()
        const all = standIn.events()
        const ids = yield* collect(
          standIn,
          { start: { since: all[100]!.created_at } },
          { ...sliced, minBehind: "2 hours", progress }
        )
        expectEachOnceInOrder(
          ids,
          all.slice(100).map((e) => e.id)
        )
        expect(progress.runs).toBe(0)
      })
    )
  )

  it.live(
    "a reading under minBehind goes parallel on its backlog of events alone, judged from pages it reads anyway",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          // 4,000 events over the last 5 minutes: recent by time, far behind by events.
          const base = Date.now() - 5 * 60_000
          const standIn = yield* WorkOSStandIn.make({
            events: 4_000,
            seedTimes: (i) => base + Math.floor((i * 280_000) / 4_000)
          })
          const all = standIn.events()
          const progress = new CatchUp.Progress()
          const ids = yield* collect(
            standIn,
            { start: { since: new Date(base).toISOString() } },
            { ...sliced, minBehind: "2 hours", behindEvents: 1_000, margin: "5 seconds", progress }
          )
          expectEachOnceInOrder(
            ids,
            all.map((e) => e.id)
          )
          expect(progress.runs).toBe(1)
          // Two pages read sequentially told it (the one asked ahead is read again): no
          // request made only to find out.
          const first = standIn.requests.findIndex((r) => r.url.searchParams.has("range_end"))
          expect(first).toBeGreaterThanOrEqual(2)
          expect(first).toBeLessThanOrEqual(3)
          const rangeStarts = standIn.requests.filter((r) => r.url.searchParams.has("range_end"))
          expect(rangeStarts.length).toBeGreaterThan(5)
        })
      )
  )

  it.live("behindEvents 0: a recent reading stays sequential whatever its backlog", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const base = Date.now() - 5 * 60_000
        const standIn = yield* WorkOSStandIn.make({
          events: 2_000,
          seedTimes: (i) => base + Math.floor((i * 280_000) / 2_000)
        })
        const progress = new CatchUp.Progress()
        const ids = yield* collect(
          standIn,
          { start: { since: new Date(base).toISOString() } },
          { ...sliced, minBehind: "2 hours", behindEvents: 0, margin: "5 seconds", progress }
        )
        expectEachOnceInOrder(
          ids,
          standIn.events().map((e) => e.id)
        )
        expect(progress.runs).toBe(0)
        expect(standIn.requests.filter((r) => r.url.searchParams.has("range_end")).length).toBe(0)
      })
    )
  )

  it.live(
    "a burst landing while following: the follower goes parallel over it, then follows on; each event once, in order",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const standIn = yield* WorkOSStandIn.make({ events: 0 })
          const workos = yield* client(standIn)
          const progress = new CatchUp.Progress()
          const got: Array<string> = []
          const fiber = yield* CatchUp.make(
            {
              start: { since: new Date(Date.now() - 1_000).toISOString() },
              follow: true,
              pollInterval: "3 seconds",
              reReadWindow: "300 millis"
            },
            { ...sliced, minBehind: "2 hours", behindEvents: 500, margin: "1 second", progress }
          ).pipe(
            Stream.provideService(WorkOS.WorkOS, workos),
            Stream.runForEach((element) => Effect.sync(() => got.push(idOf(element)))),
            Effect.forkChild
          )
          // While the follower waits out its poll interval, 3,000 events land over 2.5 s.
          for (let i = 0; i < 10; i++) {
            standIn.appendGenerated(300)
            yield* Effect.sleep("250 millis")
          }
          const expected = standIn.events().map((e) => e.id)
          while (got.length < expected.length) yield* Effect.sleep("50 millis")
          // And it follows on after the catch-up.
          standIn.appendGenerated(5)
          const more = standIn.events().map((e) => e.id)
          while (got.length < more.length) yield* Effect.sleep("50 millis")
          yield* Effect.sleep("200 millis")
          yield* Fiber.interrupt(fiber)
          expectEachOnceInOrder(got, more)
          // Sliced by events alone (minBehind is 2 hours); how many slices depends on
          // how the burst's seconds fell, the previous test checks they overlap.
          expect(progress.runs).toBeGreaterThanOrEqual(1)
          expect(progress.slicesDone).toBeGreaterThanOrEqual(1)
        })
      ),
    30_000
  )
})
