/**
 * A small stand-in for the runner's pipeline, for these tests only: it hands the sink
 * batches in event order and, like the pipeline, sends again (first, in order) every
 * event whose outcome is Retry, and the whole batch when it fails with SinkUnavailable.
 */
import type { Event, Sink } from "@workos-relay/core"
import * as Effect from "effect/Effect"

export interface Report {
  /** The final outcome of every event, by id: Delivered or Rejected. */
  readonly outcomes: ReadonlyMap<string, Sink.Outcome>
  /** How many `deliver` calls it took. */
  readonly deliveries: number
  /** How many events were handed back as Retry along the way. */
  readonly retries: number
  /** How many times a whole batch failed with SinkUnavailable. */
  readonly unavailable: number
}

export const deliverAll = (
  sink: Sink.Sink,
  events: ReadonlyArray<Event.Any>,
  options: { readonly maxDeliveries?: number } = {}
): Effect.Effect<Report, Sink.SinkFatal | Error> =>
  Effect.gen(function* () {
    const maxDeliveries = options.maxDeliveries ?? 100_000
    const outcomes = new Map<string, Sink.Outcome>()
    let queue: Array<Event.Any> = [...events]
    let deliveries = 0
    let retries = 0
    let unavailable = 0
    while (queue.length > 0) {
      if (deliveries >= maxDeliveries)
        return yield* Effect.fail(new Error(`gave up after ${deliveries} deliveries`))
      deliveries++
      const batch = queue.slice(0, sink.batch.maxEvents)
      const result = yield* sink
        .deliver(batch)
        .pipe(Effect.catchTag("SinkUnavailable", () => Effect.succeed(undefined)))
      if (result === undefined) {
        unavailable++
        continue
      }
      if (result.length !== batch.length) {
        return yield* Effect.fail(
          new Error(`${result.length} outcomes for a batch of ${batch.length}`)
        )
      }
      const again: Array<Event.Any> = []
      batch.forEach((event, i) => {
        const outcome = result[i]!
        if (outcome._tag === "Retry") {
          retries++
          again.push(event)
        } else outcomes.set(event.id, outcome)
      })
      queue = [...again, ...queue.slice(batch.length)]
    }
    return { outcomes, deliveries, retries, unavailable }
  })

/** Distinct events in a known order: the core examples, one per type, cycled, each with its own id. */
export const makeEvents = (examples: ReadonlyArray<Event.Any>, count: number): Array<Event.Any> =>
  Array.from({ length: count }, (_, i) => {
    const example = examples[i % examples.length]!
    return { ...example, id: `event_${String(i).padStart(6, "0")}` }
  })
