/**
 * A small stand-in for the runner's pipeline, for tests: deliver a batch, keep
 * what was delivered or rejected, re-deliver (in order) what is to be retried,
 * after the longest `after` the sink asked for.
 */
import type { Event, Sink } from "@workos-relay/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

export interface Result {
  /** The final outcome of each event, by its position in the input. */
  readonly outcomes: ReadonlyArray<Sink.Outcome>
  /** How many `deliver` calls it took. */
  readonly rounds: number
  /** Every retry outcome seen, with when it was given. */
  readonly retries: ReadonlyArray<{
    readonly id: string
    readonly after: number | undefined
    readonly at: number
  }>
}

export const deliverAll = (
  sink: Sink.Sink,
  events: ReadonlyArray<Event.Any>,
  options: { readonly maxRounds?: number; readonly defaultWaitMs?: number } = {}
): Effect.Effect<Result, Sink.SinkFatal | Sink.SinkUnavailable> =>
  Effect.gen(function* () {
    const outcomes: Array<Sink.Outcome> = new Array(events.length)
    const retries: Array<{ id: string; after: number | undefined; at: number }> = []
    let pending = events.map((event, index) => ({ event, index }))
    let rounds = 0
    while (pending.length > 0) {
      if (rounds++ >= (options.maxRounds ?? 100))
        throw new Error(`not done after ${rounds - 1} rounds`)
      const batch = pending
      const results = yield* sink.deliver(batch.map((p) => p.event))
      if (results.length !== batch.length)
        throw new Error("the sink must give one outcome per event")
      pending = []
      let wait = 0
      results.forEach((outcome, k) => {
        const item = batch[k]!
        if (outcome._tag === "Retry") {
          const after = outcome.after === undefined ? undefined : Duration.toMillis(outcome.after)
          retries.push({ id: item.event.id, after, at: Date.now() })
          wait = Math.max(wait, after ?? options.defaultWaitMs ?? 50)
          pending.push(item)
        } else outcomes[item.index] = outcome
      })
      if (pending.length > 0) yield* Effect.sleep(Duration.millis(wait))
    }
    return { outcomes, rounds, retries }
  })
