/**
 * Retrying dead letters: the one implementation behind `dead-letters retry` and the
 * console's retry button. Each letter goes again through its sink, with one short
 * round of retries; delivered, it is removed; not, its failure is updated.
 */
import { Event, Sink } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { Metrics } from "../Observability.ts"
import * as Pipeline from "../Pipeline.ts"
import type * as StateStore from "../StateStore.ts"

/** What became of one dead letter retried. */
export interface Outcome {
  readonly id: number
  readonly delivered: boolean
  /** Why it is still dead-lettered. */
  readonly reason?: string | undefined
  /**
   * Not tried: its sink had already failed as a whole earlier in this round (each of
   * its letters would wait out the same retries: 300 letters, 300 rounds).
   */
  readonly skipped?: boolean | undefined
  /** This one failed because the sink itself did (down, asked to retry, stopped). */
  readonly sinkDown?: boolean | undefined
}

/**
 * The sinks to retry through: each running sink's lane, and why the others are not
 * running. (Lanes, not `Runner.MadeSink`s: `Runner` serves the console, which retries.)
 */
export interface Destinations {
  readonly lanes: ReadonlyArray<Pipeline.LaneSpec>
  readonly unavailable: ReadonlyMap<string, string>
}

/**
 * Retries `letters` one after the other, each through its sink's lane. A sink that
 * fails as a whole is not tried again in this round: its other letters stay as they
 * are, marked `skipped`.
 */
export const retryLetters = (
  store: StateStore.Service,
  made: Destinations,
  letters: ReadonlyArray<StateStore.DeadLetter>
): Effect.Effect<ReadonlyArray<Outcome>, StateStore.StoreError> => {
  // Its own counters: a retry is not the live pipeline's traffic.
  const metrics = new Metrics()
  const down = new Set<string>()
  return Effect.forEach(letters, (letter) =>
    Effect.gen(function* () {
      if (down.has(letter.sink))
        return {
          id: letter.id,
          delivered: false,
          skipped: true,
          reason: `not tried: sink ${letter.sink} is still failing`
        }
      const outcome = yield* retryOne(store, made, letter, metrics)
      if (outcome.sinkDown === true) down.add(letter.sink)
      return outcome
    })
  )
}

const retryOne = (
  store: StateStore.Service,
  made: Destinations,
  letter: StateStore.DeadLetter,
  metrics: Metrics
): Effect.Effect<Outcome, StateStore.StoreError> =>
  Effect.gen(function* () {
    // The lane of the letter's sink for its source (several sources), else the sink's.
    const ofSink = made.lanes.filter((lane) => Pipeline.keyOf(lane).sink === letter.sink)
    const spec = ofSink.find((lane) => Pipeline.keyOf(lane).source === letter.source) ?? ofSink[0]
    if (spec === undefined) {
      const why = made.unavailable.get(letter.sink)
      return {
        id: letter.id,
        delivered: false,
        reason: `sink ${letter.sink} is ${why === undefined ? "not in the config" : `unavailable: ${why}`}`
      }
    }
    // As stored: an event that broke its schema goes as WorkOS sent it (retrying
    // it is the operator's call), marked as a run marks it, so a raw sink records
    // where it breaks the spec. Something that is not JSON cannot go at all.
    let event: unknown
    try {
      event = JSON.parse(letter.event)
    } catch {
      return { id: letter.id, delivered: false, reason: "not JSON, cannot be delivered" }
    }
    const decoded = Event.decode(event)
    if (Result.isFailure(decoded)) event = Sink.mismatched(decoded.failure) ?? event
    const result = yield* Effect.result(
      Pipeline.deliver(
        {
          ...spec,
          retry: { ...spec.retry, maxDuration: Math.min(spec.retry.maxDuration, 10_000) }
        },
        [event],
        metrics,
        Date.now()
      )
    )
    if (Result.isSuccess(result) && result.success.delivered === 1) {
      yield* store.dropDeadLetters([letter.id])
      return { id: letter.id, delivered: true }
    }
    const reason = Result.isSuccess(result)
      ? (result.success.deadLetters[0]?.error ?? "not delivered")
      : result.failure.reason
    yield* store.updateDeadLetter(letter.id, reason, letter.attempts + 1, Date.now())
    return { id: letter.id, delivered: false, reason, sinkDown: !reason.startsWith("rejected:") }
  })
