/**
 * Delivering one batch to a sink until every event of it is delivered or
 * dead-lettered: per event, delivered; retry with jittered exponential backoff
 * (honouring `Retry.after` and `SinkUnavailable.retryAfter`) until
 * `retry.maxDuration`, then a dead letter; rejected: a dead letter at once.
 */
import { Sink } from "@workos-relay/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { describeFailure, formatMillis } from "../internal/Text.ts"
import type { Metrics } from "../Observability.ts"
import type { NewDeadLetter } from "../StateStore.ts"
import { annotate, traced } from "../Telemetry.ts"

/** How a lane retries a batch its sink could not take. */
export interface RetryPolicy {
  /** The first backoff (ms); each next one doubles, with jitter, up to `maxDelay`. */
  readonly initialDelay: number
  readonly maxDelay: number
  /** How long an event is retried (ms) before it is dead-lettered. */
  readonly maxDuration: number
}

/** What delivering needs of a lane: its sink, its name and how it retries. */
export interface DeliverySpec {
  readonly name: string
  readonly sink: Sink.Sink
  readonly retry: RetryPolicy
}

const hasReason = (value: unknown, tag: string): value is { readonly reason: string } =>
  (value as { _tag?: unknown } | null)?._tag === tag &&
  typeof (value as { reason?: unknown }).reason === "string"

/**
 * A sink's failure as the contract says it should be: `SinkUnavailable` or
 * `SinkFatal`. Anything else a sink fails with (a plain value, an error of its own)
 * is fatal, as nobody knows whether retrying could help, described readably.
 */
export const sinkError = (failure: unknown): Sink.SinkUnavailable | Sink.SinkFatal => {
  if (failure instanceof Sink.SinkUnavailable || failure instanceof Sink.SinkFatal) return failure
  // Plain tagged objects, from a sink written without @workos-relay/core.
  if (hasReason(failure, "SinkUnavailable")) {
    const after = (failure as { retryAfter?: unknown }).retryAfter
    const retryAfter =
      after === undefined ? undefined : Option.getOrUndefined(Duration.fromInput(after as any))
    return new Sink.SinkUnavailable(
      retryAfter === undefined ? { reason: failure.reason } : { reason: failure.reason, retryAfter }
    )
  }
  if (hasReason(failure, "SinkFatal")) return new Sink.SinkFatal({ reason: failure.reason })
  return new Sink.SinkFatal({ reason: describeFailure(failure) })
}

/** A whole batch that could not be delivered now (`SinkUnavailable`, or a sink that crashed). */
interface Unavailable {
  readonly reason: string
  readonly retryAfter?: Duration.Duration | undefined
}

const jitter = (ms: number) => ms * (0.8 + Math.random() * 0.4)

export interface Delivery {
  readonly deadLetters: Array<NewDeadLetter>
  readonly delivered: number
  /**
   * The run stopped while events of the batch waited for a retry: none of the batch is
   * done (no dead letters recorded), so its checkpoint stays before it and the next
   * start delivers it again.
   */
  readonly abandoned: boolean
}

export const deadLetter = (
  event: unknown,
  error: string,
  attempts: number,
  first: number,
  last: number
): NewDeadLetter => ({
  eventId: String((event as any)?.id ?? "(no id)"),
  eventType: String((event as any)?.event ?? "(no type)"),
  event: JSON.stringify(event),
  error,
  attempts,
  firstFailure: first,
  lastFailure: last
})

/**
 * A lane's run of failed delivery attempts, across batches: a sink that keeps failing
 * is logged as a warning at its first failure, then at most every `warnEvery` ms,
 * and once when it delivers again (each retry is logged at debug level only).
 */
export interface FailureStreak {
  failures: number
  since: number
  warnedAt: number
  readonly warnEvery: number
}

export const failureStreak = (warnEvery = 60_000): FailureStreak => ({
  failures: 0,
  since: 0,
  warnedAt: 0,
  warnEvery
})

/** One attempt at delivering `pending`: each event's outcome, or why none could be delivered. */
const attempt = (
  spec: DeliverySpec,
  pending: ReadonlyArray<unknown>,
  attempts: number
): Effect.Effect<ReadonlyArray<Sink.Outcome> | Unavailable, Sink.SinkFatal> =>
  // `suspend`: a `deliver` that throws before returning an Effect crashed as one that dies.
  Effect.suspend(() => spec.sink.deliver(pending as any)).pipe(
    Effect.map((outcomes): ReadonlyArray<Sink.Outcome> | Unavailable =>
      outcomes.length === pending.length
        ? outcomes
        : new Sink.SinkUnavailable({
            reason: `the sink answered ${outcomes.length} outcomes for ${pending.length} events`
          })
    ),
    Effect.mapError(sinkError),
    Effect.catchTag("SinkUnavailable", (e): Effect.Effect<Unavailable> => Effect.succeed(e)),
    Effect.catchDefect((defect) =>
      Effect.succeed(
        new Sink.SinkUnavailable({ reason: `the sink crashed: ${describeFailure(defect)}` })
      )
    ),
    Effect.tap((outcome) => annotate(() => attemptAttributes(outcome))),
    traced("workos_relay.deliver.attempt", {
      "workos_relay.sink": spec.name,
      "workos_relay.events": pending.length,
      "workos_relay.attempt": attempts
    })
  )

/**
 * Delivers one batch until every event is delivered or dead-lettered. Fails only
 * with `SinkFatal` (or a failure outside the contract, see `sinkError`). A defect of
 * the sink (it threw) counts as the sink being unavailable: retried, then
 * dead-lettered, never a crash. Once `stopping` completes, an attempt under way may
 * finish but no new one starts: waiting out a backoff would only hold up the
 * shutdown (see `Delivery.abandoned`).
 */
export const deliver = (
  spec: DeliverySpec,
  events: ReadonlyArray<unknown>,
  metrics: Metrics,
  fetchedAt: number,
  stopping: Effect.Effect<void> = Effect.never,
  streak: FailureStreak = failureStreak()
): Effect.Effect<Delivery, Sink.SinkFatal> =>
  Effect.suspend(() => {
    // Everything delivered at the first attempt, the common case, is settled without
    // the generator below: one made for each batch kept the batch reachable once
    // done, and so alive through young-generation GCs (see `Lane.finishBatch`).
    if (events.length === 0 || streak.failures > 0)
      return retrying(spec, events, metrics, fetchedAt, stopping, streak, undefined)
    return Effect.flatMap(attempt(spec, events, 1), (first) =>
      Array.isArray(first) && first.every((o: Sink.Outcome) => o._tag === "Delivered")
        ? Effect.suspend(() => allDelivered(spec, events.length, metrics, fetchedAt))
        : retrying(spec, events, metrics, fetchedAt, stopping, streak, first)
    )
  }).pipe(
    traced("workos_relay.deliver", {
      "workos_relay.sink": spec.name,
      "workos_relay.events": events.length
    })
  )

/** The first attempt delivered all `count` events. */
const allDelivered = (
  spec: DeliverySpec,
  count: number,
  metrics: Metrics,
  fetchedAt: number
): Effect.Effect<Delivery> => {
  const m = metrics.sink(spec.name)
  m.deliveredCount.add(count)
  m.observeLatency((Date.now() - fetchedAt) / 1000, count)
  m.deadLetteredCount.add(0)
  return Effect.as(
    annotate(() => ({
      "workos_relay.outcome": "delivered",
      "workos_relay.attempts": 1,
      "workos_relay.delivered": count,
      "workos_relay.dead_lettered": 0
    })),
    { deadLetters: [], delivered: count, abandoned: false }
  )
}

/** Delivery from the outcome of the first attempt (`first`; none yet when undefined), with retries. */
const retrying = (
  spec: DeliverySpec,
  events: ReadonlyArray<unknown>,
  metrics: Metrics,
  fetchedAt: number,
  stopping: Effect.Effect<void>,
  streak: FailureStreak,
  first: ReadonlyArray<Sink.Outcome> | Unavailable | undefined
): Effect.Effect<Delivery, Sink.SinkFatal> =>
  Effect.gen(function* () {
    const m = metrics.sink(spec.name)
    const deadLetters: Array<NewDeadLetter> = []
    let pending = events
    let attempts = 0
    let firstFailure: number | undefined
    let delivered = 0
    while (pending.length > 0) {
      attempts++
      const outcome =
        attempts === 1 && first !== undefined ? first : yield* attempt(spec, pending, attempts)
      const now = Date.now()
      const retry: Array<unknown> = []
      // Each event's own reason, as its dead letter will say; the first (often what
      // holds the others back) stands for the attempt in the logs.
      const reasons: Array<string> = []
      let after = 0
      if (!Array.isArray(outcome)) {
        const unavailable = outcome as Unavailable
        retry.push(...pending)
        reasons.push(...pending.map(() => unavailable.reason))
        if (unavailable.retryAfter !== undefined) after = Duration.toMillis(unavailable.retryAfter)
      } else {
        let ok = 0
        const outcomes = outcome as ReadonlyArray<Sink.Outcome>
        for (let i = 0; i < outcomes.length; i++) {
          const o = outcomes[i]!
          if (o._tag === "Delivered") ok++
          else if (o._tag === "Rejected")
            deadLetters.push(
              deadLetter(pending[i], `rejected: ${o.reason}`, attempts, firstFailure ?? now, now)
            )
          else {
            retry.push(pending[i])
            reasons.push(o.reason)
            if (o.after !== undefined) after = Math.max(after, Duration.toMillis(o.after))
          }
        }
        delivered += ok
        m.deliveredCount.add(ok)
        if (ok > 0) m.observeLatency((now - fetchedAt) / 1000, ok)
      }
      if (retry.length === 0) {
        if (streak.failures > 0) {
          yield* Effect.logInfo(
            `sink ${spec.name}: delivering again after ${streak.failures} failed attempt(s) over ${formatMillis(now - streak.since)}`
          )
          streak.failures = 0
        }
        break
      }
      const reason = reasons[0]!
      streak.failures++
      if (streak.failures === 1) streak.since = now
      firstFailure ??= now
      if (now - firstFailure >= spec.retry.maxDuration) {
        const gaveUpAt = firstFailure
        deadLetters.push(
          ...retry.map((event, i) =>
            deadLetter(
              event,
              `gave up after ${attempts} attempts: ${reasons[i]}`,
              attempts,
              gaveUpAt,
              now
            )
          )
        )
        break
      }
      m.retriedCount.add(retry.length)
      const backoff = jitter(
        Math.min(spec.retry.maxDelay, spec.retry.initialDelay * 2 ** (attempts - 1))
      )
      const wait = Math.min(
        Math.max(backoff, after),
        spec.retry.maxDuration - (now - firstFailure) + 1
      )
      if (streak.failures === 1 || now - streak.warnedAt >= streak.warnEvery) {
        streak.warnedAt = now
        yield* Effect.logWarning(
          streak.failures === 1
            ? `sink ${spec.name}: delivery failed: ${reason}; retrying ${retry.length} event(s) in ${formatMillis(wait)}`
            : `sink ${spec.name}: still failing after ${streak.failures} attempts over ${formatMillis(now - streak.since)}: ${reason}; retrying ${retry.length} event(s) in ${formatMillis(wait)}`
        )
      } else
        yield* Effect.logDebug(
          `sink ${spec.name}: ${retry.length} event(s) to retry in ${Math.round(wait)}ms: ${reason}`
        )
      const stopped = yield* Effect.raceFirst(
        Effect.sleep(wait).pipe(Effect.as(false)),
        stopping.pipe(Effect.as(true))
      )
      if (stopped) {
        yield* annotate(() => ({
          "workos_relay.outcome": "abandoned",
          "workos_relay.attempts": attempts
        }))
        return { deadLetters: [], delivered, abandoned: true }
      }
      pending = retry
    }
    m.deadLetteredCount.add(deadLetters.length)
    yield* annotate(() => ({
      "workos_relay.outcome":
        deadLetters.length === 0
          ? "delivered"
          : delivered === 0
            ? "dead_lettered"
            : "partly_dead_lettered",
      "workos_relay.attempts": attempts,
      "workos_relay.delivered": delivered,
      "workos_relay.dead_lettered": deadLetters.length
    }))
    return { deadLetters, delivered, abandoned: false }
  })

/** What one attempt came to: every event delivered, some not, or the sink unavailable. */
const attemptAttributes = (outcome: ReadonlyArray<Sink.Outcome> | Unavailable) => {
  if (!Array.isArray(outcome))
    return {
      "workos_relay.outcome": "unavailable",
      "workos_relay.reason": (outcome as Unavailable).reason
    }
  let delivered = 0
  let rejected = 0
  for (const o of outcome as ReadonlyArray<Sink.Outcome>)
    if (o._tag === "Delivered") delivered++
    else if (o._tag === "Rejected") rejected++
  const retry = outcome.length - delivered - rejected
  return {
    "workos_relay.outcome": delivered === outcome.length ? "delivered" : "partial",
    "workos_relay.delivered": delivered,
    "workos_relay.rejected": rejected,
    "workos_relay.retry": retry
  }
}
