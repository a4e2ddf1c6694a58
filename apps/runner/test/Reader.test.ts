import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import type { EventStream } from "@workos-relay/core"
import { Sink } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { Metrics } from "../src/Observability.ts"
import { Lane, type LaneContext } from "../src/pipeline/Lane.ts"
import { Readers, type Source } from "../src/pipeline/Reader.ts"
import * as StateStore from "../src/StateStore.ts"
import { tempDir, waitUntil } from "./helpers.ts"

/** A source over a fixed list of `event_00001...` in pages of 10; it counts the events it serves. */
const pagedSource = (total: number) => {
  const all: Array<EventStream.Element> = Array.from({ length: total }, (_, i) => {
    const id = `event_${String(i + 1).padStart(5, "0")}`
    const event = {
      object: "event",
      id,
      event: "user.created",
      data: {},
      created_at: "2026-01-01T00:00:00.000Z"
    }
    return { _tag: "Event", cursor: id, event } as EventStream.Element
  })
  const served = { events: 0 }
  const from = (start: EventStream.Start) =>
    typeof start === "object" && "after" in start
      ? all.findIndex((e) => e.cursor === start.after) + 1
      : 0
  const source: Source = {
    read: (start, follow) => {
      const pages = (i: number): Stream.Stream<EventStream.Element> =>
        i >= all.length
          ? follow
            ? Stream.fromEffect(Effect.sleep(20)).pipe(
                Stream.drain,
                Stream.concat(Stream.suspend(() => pages(i)))
              )
            : Stream.empty
          : Stream.fromArray(all.slice(i, i + 10)).pipe(
              Stream.tap(() => Effect.sync(() => served.events++)),
              Stream.concat(Stream.suspend(() => pages(i + 10)))
            )
      return Stream.suspend(() => pages(from(start)))
    }
  }
  return { source, served, all }
}

const sinkInto = (
  received: Array<string>,
  pause: Effect.Effect<void> = Effect.void
): Sink.Sink => ({
  batch: { maxEvents: 10, maxWait: "5 millis" },
  deliver: (batch) =>
    pause.pipe(
      Effect.andThen(
        Effect.sync(() =>
          batch.map((event) => {
            received.push(event.id)
            return Sink.delivered
          })
        )
      )
    )
})

const laneOf = (name: string, sink: Sink.Sink, context: LaneContext, bufferSize: number) =>
  new Lane(
    {
      name,
      sink,
      batch: { maxEvents: 10, maxWait: 5 },
      retry: { initialDelay: 1, maxDelay: 2, maxDuration: 50 },
      accepts: () => true
    },
    "earliest",
    bufferSize,
    context
  )

/** Lanes fed by one `Readers` over `source`, each running in the scope; `stop` ends the reading. */
const runLanes = (source: Source, lanes: ReadonlyArray<readonly [string, Sink.Sink, number]>) =>
  Effect.gen(function* () {
    const store = yield* StateStore.sqlite(Path.join(tempDir("relay-reader-"), "state.db"))
    const metrics = new Metrics()
    let stopping = false
    const context: LaneContext = {
      store,
      metrics,
      token: () => null,
      live: true,
      halted: Effect.never,
      stopping: () => stopping
    }
    const made = lanes.map(([name, sink, bufferSize]) => laneOf(name, sink, context, bufferSize))
    const readers = new Readers({
      source,
      metrics,
      live: true,
      pollInterval: 20,
      until: Number.POSITIVE_INFINITY,
      scope: yield* Effect.scope,
      reject: () => Effect.void,
      stopping: () => stopping
    })
    for (const lane of made) yield* readers.attach(lane)
    for (const lane of made) yield* lane.run().pipe(Effect.forkScoped)
    const stop = () => {
      stopping = true
      readers.stop()
    }
    return { lanes: made, stop }
  })

describe("Readers", () => {
  it.live(
    "lanes that keep up share one reading: each event is served once, every lane gets all",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { source, served, all } = pagedSource(200)
          const a: Array<string> = []
          const b: Array<string> = []
          const { lanes, stop } = yield* runLanes(source, [
            ["a", sinkInto(a), 1000],
            ["b", sinkInto(b), 1000]
          ])
          yield* waitUntil(
            "both lanes to get every event",
            () => a.length === 200 && b.length === 200
          )
          const ids = all.map((e) => e.cursor)
          expect(a).toEqual(ids)
          expect(b).toEqual(ids)
          expect(served.events).toBe(200)
          expect(lanes.map((l) => l.reader)).toEqual(["hub", "hub"])
          stop()
        })
      )
  )

  it.live("a lane that falls behind reads on its own, gets every event once, and rejoins", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { source, all } = pagedSource(300)
        const fast: Array<string> = []
        const slow: Array<string> = []
        let detached = false
        const { lanes, stop } = yield* runLanes(source, [
          ["fast", sinkInto(fast), 1000],
          // 20 events of room: the slow lane cannot keep a page's room while it sleeps.
          ["slow", sinkInto(slow, Effect.sleep(5)), 20]
        ])
        yield* waitUntil(
          "the slow lane to be detached",
          () => (detached ||= lanes[1]!.reader === "own")
        )
        yield* waitUntil(
          "both lanes to get every event",
          () => fast.length === 300 && slow.length === 300
        )
        const ids = all.map((e) => e.cursor)
        expect(fast).toEqual(ids)
        expect(slow).toEqual(ids)
        yield* waitUntil("the slow lane to rejoin", () => lanes[1]!.reader === "hub")
        stop()
      })
    )
  )
})
