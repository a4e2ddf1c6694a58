import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import type { EventStream } from "@workos-relay/core"
import { Event, Sink } from "@workos-relay/core"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Result from "effect/Result"
import { Metrics } from "../src/Observability.ts"
import { makeFilter } from "../src/pipeline/Filter.ts"
import { Lane, type LaneContext, type LaneSpec } from "../src/pipeline/Lane.ts"
import * as Retention from "../src/pipeline/Retention.ts"
import * as StateStore from "../src/StateStore.ts"
import { tempDir, waitUntil } from "./helpers.ts"

/** Made-up events: `event_00001`, ... of the types given in turn. */
const elements = (
  count: number,
  types: ReadonlyArray<string> = ["user.created"],
  from = 1
): Array<EventStream.Element> =>
  Array.from({ length: count }, (_, i) => {
    const id = `event_${String(from + i).padStart(5, "0")}`
    const event = {
      object: "event",
      id,
      event: types[i % types.length]!,
      data: {},
      created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, from + i)).toISOString()
    }
    return { _tag: "Event", cursor: id, event } as EventStream.Element
  })

/** A sink that records the ids it is given and answers each as `outcome` says. */
const recordingSink = (outcome: (id: string) => Sink.Outcome = () => Sink.delivered) => {
  const received: Array<string> = []
  const events: Array<Event.Any> = []
  const sink: Sink.Sink = {
    batch: { maxEvents: 10, maxWait: "10 millis" },
    deliver: (batch) =>
      Effect.sync(() =>
        batch.map((event) => {
          received.push(event.id)
          events.push(event)
          return outcome(event.id)
        })
      )
  }
  return { sink, received, events }
}

const spec = (
  sink: Sink.Sink,
  patterns: ReadonlyArray<string> = [],
  extra: Partial<LaneSpec> = {}
): LaneSpec => ({
  name: "rec",
  sink,
  batch: { maxEvents: 10, maxWait: 10 },
  retry: { initialDelay: 1, maxDelay: 2, maxDuration: 20 },
  accepts: makeFilter(patterns.length === 0 ? [] : [patterns], undefined),
  ...extra
})

/** A drifted payload as the stand-in serves it (`event_<n>`), and the element the stream makes of it. */
const drifted = (
  n: number,
  drift?: WorkOSStandIn.Drift,
  type?: Event.Type
): { text: string; raw: unknown; element: EventStream.Element } => {
  const id = `event_${String(n).padStart(5, "0")}`
  const text = JSON.stringify({
    ...WorkOSStandIn.driftedEvent(drift, type),
    id,
    created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString()
  })
  const raw: unknown = JSON.parse(text)
  const decoded = Event.decode(raw)
  if (Result.isSuccess(decoded)) throw new Error(`${id} decoded`)
  return { text, raw, element: { _tag: "Undecodable", cursor: id, error: decoded.failure } }
}

/** The log lines of an effect, as `LEVEL message`. */
const capturingLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    lines.push(
      `${logLevel.toUpperCase()} ${(Array.isArray(message) ? message : [message]).join(" ")}`
    )
  })
  return { lines, layer: Logger.layer([logger]) }
}

const context = (store: StateStore.Service, live = true): LaneContext => ({
  store,
  metrics: new Metrics(),
  token: () => null,
  live,
  halted: Effect.never,
  stopping: () => false
})

const store = () => StateStore.sqlite(Path.join(tempDir("relay-lane-"), "state.db"))

describe("Lane", () => {
  it.live("delivers what its buffer holds in batches, in order, and checkpoints the last", () =>
    Effect.gen(function* () {
      const db = yield* store()
      const { sink, received } = recordingSink()
      const lane = new Lane(spec(sink), "earliest", 1000, context(db))
      const given = elements(25)
      lane.buffer.push(given)
      lane.buffer.ended = true
      const report = yield* lane.run()
      expect(received).toEqual(given.map((e) => e.cursor))
      expect(report).toMatchObject({ name: "rec", delivered: 25, deadLettered: 0 })
      expect((yield* db.checkpoint("rec"))?.cursor).toBe("event_00025")
    })
  )

  it.live("filters by type, yet checkpoints past the filtered events", () =>
    Effect.gen(function* () {
      const db = yield* store()
      const { sink, received } = recordingSink()
      const lane = new Lane(spec(sink, ["dsync.*"]), "earliest", 1000, context(db))
      lane.buffer.push(elements(6, ["dsync.user.created", "user.created"]))
      lane.buffer.ended = true
      yield* lane.run()
      expect(received).toEqual(["event_00001", "event_00003", "event_00005"])
      expect((yield* db.checkpoint("rec"))?.cursor).toBe("event_00006")
    })
  )

  it.live("dead-letters a rejected event with its reason and goes on", () =>
    Effect.gen(function* () {
      const db = yield* store()
      const { sink, received } = recordingSink((id) =>
        id === "event_00002" ? Sink.rejected("no such channel") : Sink.delivered
      )
      const lane = new Lane(spec(sink), "earliest", 1000, context(db))
      lane.buffer.push(elements(3))
      lane.buffer.ended = true
      const report = yield* lane.run()
      expect(received).toEqual(["event_00001", "event_00002", "event_00003"])
      expect(report).toMatchObject({ delivered: 2, deadLettered: 1 })
      const letters = yield* db.deadLetters({ sink: "rec" })
      expect(letters.map((l) => [l.eventId, l.error])).toEqual([
        ["event_00002", "rejected: no such channel"]
      ])
    })
  )

  it.live(
    "an event that failed to decode is dead-lettered and counted, beside a batch delivered",
    () =>
      Effect.gen(function* () {
        const db = yield* store()
        const { sink, received } = recordingSink()
        const ctx = context(db)
        const lane = new Lane(spec(sink), "earliest", 1000, ctx)
        const broken = {
          object: "event",
          id: "event_00003",
          event: "user.created",
          data: 42,
          created_at: "2026-01-01T00:00:03.000Z"
        }
        const undecodable: EventStream.Element = {
          _tag: "Undecodable",
          cursor: "event_00003",
          error: new Event.EventDecodeError({
            id: "event_00003",
            type: "user.created",
            path: "data",
            reason: "Expected object",
            raw: broken
          })
        }
        lane.buffer.push([...elements(2), undecodable, ...elements(2, undefined, 4)])
        lane.buffer.ended = true
        const report = yield* lane.run()
        expect(received).toEqual(["event_00001", "event_00002", "event_00004", "event_00005"])
        expect(report).toMatchObject({ delivered: 4, deadLettered: 1 })
        expect(ctx.metrics.sink("rec").deadLettered).toBe(1)
        const letters = yield* db.deadLetters({ sink: "rec" })
        expect(letters.map((l) => l.eventId)).toEqual(["event_00003"])
        expect(JSON.parse(letters[0]!.event)).toEqual(broken)
        expect((yield* db.checkpoint("rec"))?.cursor).toBe("event_00005")
      })
  )

  it.live(
    "spec drift: a raw sink gets the event as WorkOS sent it, marked; a typed one dead-letters it with the path; counted and told once",
    () =>
      Effect.gen(function* () {
        const db = yield* store()
        const ctx = context(db)
        const raw = recordingSink()
        const typed = recordingSink()
        const rawLane = new Lane(
          spec(raw.sink, [], { name: "raw", raw: true }),
          "earliest",
          1000,
          ctx
        )
        const typedLane = new Lane(spec(typed.sink, [], { name: "typed" }), "earliest", 1000, ctx)
        const role = drifted(3)
        const role2 = drifted(5)
        const user = drifted(6, "wrongObject", "user.created")
        const given = [
          ...elements(2),
          role.element,
          ...elements(1, undefined, 4),
          role2.element,
          user.element,
          ...elements(2, undefined, 7)
        ]
        // As the hub does: the same elements, so the same objects, for both lanes.
        for (const lane of [rawLane, typedLane]) {
          lane.buffer.push(given)
          lane.buffer.ended = true
        }
        const logs = capturingLogs()
        const [rawReport, typedReport] = yield* Effect.all([rawLane.run(), typedLane.run()], {
          concurrency: "unbounded"
        }).pipe(Effect.provide(logs.layer))

        const all = given.map((e) => e.cursor)
        expect(raw.received).toEqual(all)
        expect(rawReport).toMatchObject({ delivered: 8, deadLettered: 0 })
        // The very objects WorkOS sent, their JSON unchanged, marked.
        const asSent = raw.events.filter((e) => Sink.mismatchOf(e) !== undefined)
        expect(asSent).toHaveLength(3)
        expect(asSent[0]).toBe(role.raw)
        expect(JSON.stringify(asSent[0])).toBe(role.text)
        expect(Sink.mismatchOf(asSent[0]!)).toEqual({
          path: "data.resource_type_slug",
          reason: "required field is missing"
        })
        expect(Sink.mismatchOf(asSent[2]!)?.path).toBe("data.object")
        expect(yield* db.deadLetters({ sink: "raw" })).toEqual([])
        expect((yield* db.checkpoint("raw"))?.cursor).toBe("event_00008")

        const drift = new Set(["event_00003", "event_00005", "event_00006"])
        expect(typed.received).toEqual(all.filter((id) => !drift.has(id!)))
        expect(typedReport).toMatchObject({ delivered: 5, deadLettered: 3 })
        const letters = yield* db.deadLetters({ sink: "typed" })
        expect(letters.map((l) => [l.eventId, l.eventType])).toEqual([
          ["event_00003", "organization_role.created"],
          ["event_00005", "organization_role.created"],
          ["event_00006", "user.created"]
        ])
        expect(letters[0]!.error).toContain(
          "does not match its schema at data.resource_type_slug: required field is missing"
        )
        expect(JSON.parse(letters[0]!.event)).toEqual(role.raw)
        expect((yield* db.checkpoint("typed"))?.cursor).toBe("event_00008")

        // Each event counted once, whichever lanes took it; each type told once.
        expect(Object.fromEntries(ctx.metrics.specMismatches)).toEqual({
          "organization_role.created": 2,
          "user.created": 1
        })
        expect(ctx.metrics.render()).toContain(
          'workos_relay_spec_mismatches_total{type="organization_role.created"} 2'
        )
        expect(logs.lines.filter((l) => l.includes("does not match the spec"))).toEqual([
          "WARN event type organization_role.created does not match the spec at data.resource_type_slug: required field is missing; raw sinks get it as sent, typed sinks dead-letter it",
          expect.stringMatching(
            /^WARN event type user\.created does not match the spec at data\.object: .*; raw sinks get it as sent, typed sinks dead-letter it$/
          )
        ])
      })
  )

  it.live(
    "spec drift: what has no id is a dead letter for a raw sink too, and a filtered type is nothing",
    () =>
      Effect.gen(function* () {
        const db = yield* store()
        const ctx = context(db)
        const raw = recordingSink()
        const lane = new Lane(
          spec(raw.sink, ["user.*", "organization_role.*"], { raw: true }),
          "earliest",
          1000,
          ctx
        )
        const { id: _, ...withoutId } = drifted(2).raw as Record<string, unknown>
        const noId = Event.decode(withoutId)
        if (Result.isSuccess(noId)) throw new Error("decoded")
        lane.buffer.push([
          ...elements(1),
          { _tag: "Undecodable", cursor: "event_00001", error: noId.failure },
          drifted(3, "nullsOmitted", "invitation.created").element,
          ...elements(1, undefined, 4)
        ])
        lane.buffer.ended = true
        const report = yield* lane.run()
        expect(raw.received).toEqual(["event_00001", "event_00004"])
        expect(report).toMatchObject({ delivered: 2, deadLettered: 1 })
        const letters = yield* db.deadLetters({ sink: "rec" })
        expect(letters.map((l) => [l.eventId, l.eventType])).toEqual([
          ["(no id)", "organization_role.created"]
        ])
        expect(ctx.metrics.specMismatches.size).toBe(0)
      })
  )

  it.live(
    "spec drift: a raw event counts towards maxBytes, and one that does not fit waits for the next batch",
    () =>
      Effect.gen(function* () {
        const db = yield* store()
        const batches: Array<Array<string>> = []
        const sink: Sink.Sink = {
          batch: { maxEvents: 10, maxWait: "10 millis" },
          deliver: (batch) =>
            Effect.sync(() => {
              batches.push(batch.map((e) => e.id))
              return batch.map(() => Sink.delivered)
            })
        }
        const role = drifted(2)
        const size = Buffer.byteLength(JSON.stringify(role.raw))
        const lane = new Lane(
          {
            ...spec(sink, [], { raw: true }),
            batch: { maxEvents: 10, maxBytes: size + 10, maxWait: 10 }
          },
          "earliest",
          1000,
          context(db)
        )
        lane.buffer.push([...elements(1), role.element, ...elements(1, undefined, 3)])
        lane.buffer.ended = true
        yield* lane.run()
        expect(batches).toEqual([["event_00001"], ["event_00002"], ["event_00003"]])
      })
  )

  it.live("waits on an empty buffer, and delivers what arrives later", () =>
    Effect.gen(function* () {
      const db = yield* store()
      const { sink, received } = recordingSink()
      const lane = new Lane(spec(sink), "earliest", 1000, context(db))
      const running = yield* lane.run().pipe(Effect.forkChild)
      yield* waitUntil(
        "the lane to wait for events",
        () => lane.metrics.lagEvents === 0 && received.length === 0
      )
      lane.buffer.push(elements(3))
      yield* waitUntil("3 deliveries", () => received.length === 3)
      expect(received).toEqual(["event_00001", "event_00002", "event_00003"])
      lane.buffer.ended = true
      lane.buffer.wake()
      const report = yield* Fiber.join(running)
      expect(report.delivered).toBe(3)
    })
  )

  it.live("a replay lane touches no checkpoint", () =>
    Effect.gen(function* () {
      const db = yield* store()
      const { sink } = recordingSink()
      const lane = new Lane(spec(sink), "earliest", 1000, context(db, false))
      lane.buffer.push(elements(5))
      lane.buffer.ended = true
      yield* lane.run()
      expect(yield* db.checkpoint("rec")).toBeUndefined()
    })
  )

  it.live(
    "retention: a lane with unread events older than most of it says so, once, and the metric shows it",
    () =>
      Effect.gen(function* () {
        const db = yield* store()
        const { sink } = recordingSink()
        const ctx = context(db)
        const day = 86_400_000
        const old = new Date(Date.now() - 9 * day).toISOString()
        const lane = new Lane(spec(sink), { after: "event_00000", createdAt: old }, 1000, ctx)
        lane.reader = "own"
        const fiber = yield* Retention.watch([lane], ctx.metrics, 10 * day, 20).pipe(
          Effect.forkChild
        )
        yield* waitUntil("the ratio", () => ctx.metrics.sink("rec").retentionUsed > 0)
        expect(ctx.metrics.sink("rec").retentionUsed).toBeCloseTo(0.9, 2)
        expect(ctx.metrics.render()).toContain(
          'workos_relay_checkpoint_retention_ratio{sink="rec"} 0.9'
        )
        // Caught up (nothing buffered, fed by the shared reader): nothing is at risk.
        lane.reader = "hub"
        yield* waitUntil("the ratio to fall", () => ctx.metrics.sink("rec").retentionUsed === 0)
        yield* Fiber.interrupt(fiber)
      })
  )
})
