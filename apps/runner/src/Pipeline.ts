/**
 * The pipeline: events from the source to every sink, one lane per sink.
 *
 * Each lane has its own buffer, its own checkpoint and its own retries, so a slow or
 * failing sink never holds back the others.
 *
 * Fetching once. One shared fetcher (the hub) reads WorkOS and hands every page to
 * the buffers of the lanes subscribed to it. A lane whose buffer has no room for a
 * page (its sink fell behind) is detached: it then reads from its own cursor with
 * its own requests, at its own pace, and nobody waits for it. (When no lane has room,
 * waiting holds back nobody, and the hub waits.) When its own reading
 * catches up with the hub (its last event is the hub's last event), it rejoins.
 * While every sink keeps up, each event is fetched from WorkOS once. The join is a
 * comparison of cursors done synchronously between two pages, so a lane never gets
 * an event twice or misses one when it changes readers.
 *
 * In a lane: filter (the sink's patterns, the config's `events` and
 * `organizations`), batch (maxEvents, maxBytes, maxWait), deliver, then per event:
 * delivered; retry with jittered exponential backoff (honouring `Retry.after` and
 * `SinkUnavailable.retryAfter`) until `retry.maxDuration`, then a dead letter;
 * rejected: a dead letter at once. The checkpoint moves past a batch only once every
 * event of it was delivered or dead-lettered: a crash at any instant loses nothing
 * (events after the checkpoint are delivered again: at least once).
 *
 * Reading failures that retrying can fix (429, 5xx, a broken connection) are retried
 * for as long as it takes. An answer that retrying cannot fix (WorkOS rejects the
 * key or the query: `WorkOSApiError`) stops the run as a stop signal would, then
 * fails it with `SourceRejected`.
 */

import * as Http from "node:http"
import { EventPattern, type EventStream, Sink, WorkOS } from "@workos-relay/core"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { RetrySettings } from "./Config.ts"
import { describeFailure, formatMillis } from "./internal/Text.ts"
import type { Metrics } from "./Observability.ts"
import type { LeaseLost, NewDeadLetter, Service as Store, StoreError } from "./StateStore.ts"

export type Element = EventStream.Element

/** Where events come from: a stream from a position on; `follow: false` ends once caught up. */
export interface Source {
  readonly read: (start: EventStream.Start, follow: boolean) => Stream.Stream<Element, unknown>
}

export interface LaneSpec {
  readonly name: string
  readonly sink: Sink.Sink
  readonly batch: {
    readonly maxEvents: number
    readonly maxBytes?: number | undefined
    readonly maxWait: number
  }
  readonly retry: RetrySettings
  /** Whether the sink takes an event of this type (undefined: unknown) with this payload. */
  readonly accepts: (type: string | undefined, raw: unknown) => boolean
}

export interface Options {
  readonly lanes: ReadonlyArray<LaneSpec>
  readonly source: Source
  readonly store: Store
  /** The fencing token of the lease held now (null: no lease, as in replay). */
  readonly token: () => number | null
  readonly metrics: Metrics
  /** Where a sink without a checkpoint starts. */
  readonly start: EventStream.Start
  /**
   * `live`: follow the stream for ever, committing checkpoints. `replay`: deliver the
   * events created in [since, until) and stop; checkpoints are not touched.
   */
  readonly mode:
    | { readonly _tag: "live"; readonly pollInterval: number }
    | { readonly _tag: "replay"; readonly until: number }
  /** Completes when the runner is asked to stop (first SIGINT/SIGTERM). */
  readonly stop: Deferred.Deferred<void>
  /** How long in-flight batches may take to finish once stopping. */
  readonly shutdownTimeout: number
  /**
   * Events a lane may hold before it is detached from the shared fetcher. Default:
   * two of its batches (at least 1,000): room for the next batch to gather while one
   * is delivered, and no more, as every buffered event is memory held.
   */
  readonly bufferSize?: number | undefined
}

/**
 * WorkOS refused to give events in a way that asking again cannot fix (400, 401, 403,
 * 404, 422: a wrong key, a key without access, a bad query). The run stops rather
 * than ask for ever; what was delivered is committed first.
 */
export class SourceRejected extends Data.TaggedError("SourceRejected")<{
  readonly error: WorkOS.WorkOSApiError
}> {
  override get message(): string {
    return explainRejection(this.error)
  }
}

/** What WorkOS answered, and which setting of the config file to look at. */
export const explainRejection = (error: WorkOS.WorkOSApiError): string => {
  const name = Http.STATUS_CODES[error.status]
  const fields =
    error.errors.length === 0
      ? ""
      : `; ${error.errors.map((e) => `${e.field}: ${e.code}`).join(", ")}`
  const requestId = error.requestId === undefined ? "" : `; request id ${error.requestId}`
  const answer = `${error.status}${name === undefined ? "" : ` ${name}`}: ${error.detail}${error.code === undefined ? "" : ` (${error.code})`}${fields}${requestId}`
  switch (error.status) {
    case 401:
      return `WorkOS rejected the API key (${answer}): check source.apiKey / WORKOS_API_KEY (missing, wrong, revoked, or from another environment)`
    case 403:
      return `WorkOS refused the API key access to events (${answer}): check what the key may read in the WorkOS dashboard, or set another key in source.apiKey`
    case 404:
      return `WorkOS has no ${error.request} here (${answer}): check source.baseUrl (default https://api.workos.com)`
    case 400:
    case 422:
      return `WorkOS rejected the query of ${error.request} (${answer}): check source.events, source.organization, source.start and the sinks' events`
    default:
      return `WorkOS refused ${error.request} (${answer}); asking again cannot fix this`
  }
}

/** The rejection in a failure of the source, when it is one that retrying cannot fix. */
export const rejectionOf = (failure: unknown): SourceRejected | undefined =>
  failure instanceof SourceRejected
    ? failure
    : failure instanceof WorkOS.WorkOSApiError
      ? new SourceRejected({ error: failure })
      : undefined

export interface LaneReport {
  readonly name: string
  readonly delivered: number
  readonly deadLettered: number
  /** Why the lane stopped early (SinkFatal). */
  readonly error: string | undefined
}

// ---------------------------------------------------------------------------
// What a sink failed with

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

// ---------------------------------------------------------------------------
// Filters

/**
 * A sink's filter: every list of patterns must select the type (definition, file,
 * entry: an intersection), and the organization must be one of `organizations`
 * when the event names one.
 */
export const makeFilter = (
  patterns: ReadonlyArray<ReadonlyArray<string>>,
  organizations: ReadonlyArray<string> | undefined
): LaneSpec["accepts"] => {
  const byType = new Map<string, boolean>()
  const orgs = organizations === undefined ? undefined : new Set(organizations)
  return (type, raw) => {
    if (type !== undefined && patterns.length > 0) {
      let ok = byType.get(type)
      if (ok === undefined) {
        ok = patterns.every((list) => list.some((p) => EventPattern.matchesName(p, type)))
        byType.set(type, ok)
      }
      if (!ok) return false
    }
    if (orgs !== undefined) {
      const org = organizationOf(raw)
      if (org !== undefined && !orgs.has(org)) return false
    }
    return true
  }
}

/** The organization an event belongs to, when its payload says. */
export const organizationOf = (raw: unknown): string | undefined => {
  const data = (raw as any)?.data
  if (typeof data !== "object" || data === null) return undefined
  if (typeof data.organization_id === "string") return data.organization_id
  const type = (raw as any).event
  if (
    typeof type === "string" &&
    type.startsWith("organization.") &&
    !type.startsWith("organization_") &&
    typeof data.id === "string"
  )
    return data.id
  return undefined
}

// ---------------------------------------------------------------------------
// A lane's buffer: one producer (the hub or the lane's own reader), one consumer.

class LaneBuffer {
  private items: Array<Element> = []
  private head = 0
  private onItems: (() => void) | undefined
  private onSpace: (() => void) | undefined
  private spaceWanted = 0
  /** Set once the source will give no more (replay), so the consumer may finish. */
  ended = false
  readonly capacity: number
  constructor(capacity: number) {
    this.capacity = capacity
  }
  get size(): number {
    return this.items.length - this.head
  }
  get free(): number {
    return this.capacity - this.size
  }
  push(elements: ReadonlyArray<Element>): void {
    for (let i = 0; i < elements.length; i++) this.items.push(elements[i]!)
    this.wake()
  }
  shift(): Element | undefined {
    if (this.head >= this.items.length) return undefined
    const element = this.items[this.head]!
    this.items[this.head++] = undefined as any
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    if (this.onSpace !== undefined && (this.free >= this.spaceWanted || this.size === 0)) {
      const f = this.onSpace
      this.onSpace = undefined
      f()
    }
    return element
  }
  /** Puts back an element the batch had no room for. */
  unshift(element: Element): void {
    if (this.head > 0) this.items[--this.head] = element
    else this.items.unshift(element)
  }
  /** Lets a producer waiting for room go on: the lane stopped, and nothing will be taken any more. */
  release(): void {
    if (this.onSpace !== undefined) {
      const f = this.onSpace
      this.onSpace = undefined
      f()
    }
  }
  wake(): void {
    if (this.onItems !== undefined) {
      const f = this.onItems
      this.onItems = undefined
      f()
    }
  }
  /** Completes once there is something to take (or the buffer ended, or `wake` is called). */
  readonly waitItems: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (this.size > 0 || this.ended) return resume(Effect.void)
    this.onItems = () => resume(Effect.void)
    return Effect.sync(() => {
      this.onItems = undefined
    })
  })
  /** Completes once `n` more elements fit (or the buffer is empty). */
  waitSpace(n: number): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (this.free >= n || this.size === 0) return resume(Effect.void)
      // `shift` calls back once there is room for all `n`, not at every element taken.
      this.spaceWanted = n
      this.onSpace = () => resume(Effect.void)
      return Effect.sync(() => {
        this.onSpace = undefined
      })
    })
  }
}

/** Ends a lane's own reading early (the end of a replay's range, or a stop). */
class StopReading extends Data.TaggedError("StopReading") {}

/** A position in the stream, comparable: the cursor of the last event read, or the start. */
const positionKey = (start: EventStream.Start): string =>
  typeof start === "string"
    ? start
    : "after" in start
      ? `after:${start.after}`
      : `since:${String(start.since)}`

interface Lane {
  readonly spec: LaneSpec
  readonly buffer: LaneBuffer
  /** Where the lane's reading has got to: the next read starts here. */
  position: EventStream.Start
  /** Which reader feeds the buffer. */
  reader: "hub" | "own" | "none"
  stopped: boolean
}

// ---------------------------------------------------------------------------
// Delivery with retries

/** A whole batch that could not be delivered now (`SinkUnavailable`, or a sink that crashed). */
interface Unavailable {
  readonly reason: string
  readonly retryAfter?: Duration.Duration | undefined
}

const jitter = (ms: number) => ms * (0.8 + Math.random() * 0.4)

interface Delivery {
  readonly deadLetters: Array<NewDeadLetter>
  readonly delivered: number
  /**
   * The run stopped while events of the batch waited for a retry: none of the batch is
   * done (no dead letters recorded), so its checkpoint stays before it and the next
   * start delivers it again.
   */
  readonly abandoned: boolean
}

const deadLetter = (
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

/**
 * Delivers one batch until every event is delivered or dead-lettered. Fails only
 * with `SinkFatal` (or a failure outside the contract, see `sinkError`). A defect of
 * the sink (it threw) counts as the sink being unavailable: retried, then
 * dead-lettered, never a crash. Once `stopping` completes, an attempt under way may
 * finish but no new one starts: waiting out a backoff would only hold up the
 * shutdown (see `Delivery.abandoned`).
 */
export const deliver = (
  spec: LaneSpec,
  events: ReadonlyArray<unknown>,
  metrics: Metrics,
  fetchedAt: number,
  stopping: Effect.Effect<void> = Effect.never,
  streak: FailureStreak = failureStreak()
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
      // `suspend`: a `deliver` that throws before returning an Effect crashed as one that dies.
      const outcome = yield* Effect.suspend(() => spec.sink.deliver(pending as any)).pipe(
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
        )
      )
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
        m.delivered += ok
        if (ok > 0) metrics.observeLatency(spec.name, (now - fetchedAt) / 1000, ok)
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
      m.retried += retry.length
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
      if (stopped) return { deadLetters: [], delivered, abandoned: true }
      pending = retry
    }
    m.deadLettered += deadLetters.length
    return { deadLetters, delivered, abandoned: false }
  })

// ---------------------------------------------------------------------------
// The run

export const run = (
  options: Options
): Effect.Effect<ReadonlyArray<LaneReport>, LeaseLost | StoreError | SourceRejected> =>
  Effect.scoped(
    Effect.gen(function* () {
      const scope = yield* Effect.scope
      // Completes on the caller's stop signal, or when WorkOS rejects what we ask.
      const halt = yield* Deferred.make<void>()
      yield* Deferred.await(options.stop).pipe(
        Effect.andThen(Deferred.succeed(halt, undefined)),
        Effect.forkIn(scope)
      )
      let rejected: SourceRejected | undefined
      const reject = (rejection: SourceRejected) =>
        Effect.suspend(() => {
          rejected ??= rejection
          return Deferred.succeed(halt, undefined)
        })
      const { metrics, store } = options
      const live = options.mode._tag === "live"
      const pollInterval = options.mode._tag === "live" ? options.mode.pollInterval : 0
      const until = options.mode._tag === "replay" ? options.mode.until : Number.POSITIVE_INFINITY
      let stopping = false

      const lanes: Array<Lane> = []
      for (const spec of options.lanes) {
        const checkpoint = live ? yield* store.checkpoint(spec.name) : undefined
        const m = metrics.sink(spec.name)
        m.cursor = checkpoint?.cursor
        m.checkpointAt = checkpoint?.updatedAt ?? 0
        lanes.push({
          spec,
          buffer: new LaneBuffer(
            Math.max(options.bufferSize ?? Math.max(2 * spec.batch.maxEvents, 1000), 200)
          ),
          position: checkpoint === undefined ? options.start : { after: checkpoint.cursor },
          reader: "none",
          stopped: false
        })
      }

      // Counts what was fetched and, in replay, cuts the stream at `until`.
      const pastUntil = (element: Element) => {
        const raw: any = element._tag === "Event" ? element.event : element.error.raw
        const created = Date.parse(raw?.created_at)
        return !Number.isNaN(created) && created >= until
      }

      // -- the hub: one reader shared by every lane that keeps up
      const hub = {
        generation: 0,
        position: undefined as string | undefined,
        subscribers: new Set<Lane>(),
        fiber: undefined as Fiber.Fiber<unknown, unknown> | undefined
      }

      const startOwnReader = (lane: Lane) =>
        Effect.gen(function* () {
          lane.reader = "own"
          metrics.sink(lane.spec.name).state = "detached"
          yield* ownReader(lane).pipe(Effect.forkIn(scope))
        })

      /** Subscribes a lane when it stands where the hub stands (or the hub is idle). Synchronous check. */
      const join = (lane: Lane): Effect.Effect<boolean> =>
        Effect.suspend(() => {
          if (lane.stopped || stopping) return Effect.succeed(false)
          const key = positionKey(lane.position)
          if (hub.subscribers.size > 0 && hub.position !== key) return Effect.succeed(false)
          hub.subscribers.add(lane)
          lane.reader = "hub"
          const m = metrics.sink(lane.spec.name)
          if (m.state === "detached" || m.state === "starting") m.state = "running"
          if (hub.subscribers.size > 1) return Effect.succeed(true)
          // The hub was idle: it starts reading where this lane stands.
          const generation = ++hub.generation
          hub.position = key
          const previous = hub.fiber
          return Effect.gen(function* () {
            if (previous !== undefined) yield* Fiber.interrupt(previous).pipe(Effect.forkIn(scope))
            hub.fiber = yield* hubReader(lane.position, generation).pipe(Effect.forkIn(scope))
            return true
          })
        })

      /**
       * When no subscribed lane has room for a page, waiting holds back no other lane:
       * the hub waits for the first to make room instead of detaching them all (each
       * would then fetch the same pages on its own).
       */
      const roomFor = (n: number): Effect.Effect<void> =>
        Effect.suspend(() => {
          const waiting = [...hub.subscribers].filter((lane) => !lane.stopped)
          if (waiting.length === 0 || waiting.some((lane) => lane.buffer.free >= n))
            return Effect.void
          return Effect.raceAll(waiting.map((lane) => lane.buffer.waitSpace(n)))
        })

      const publish = (
        elements: ReadonlyArray<Element>,
        generation: number
      ): Effect.Effect<boolean> =>
        Effect.suspend(() => {
          if (generation !== hub.generation) return Effect.succeed(false)
          metrics.fetched += elements.length
          const last = lastCursor(elements)
          const detached: Array<Lane> = []
          for (const lane of hub.subscribers) {
            if (lane.stopped) {
              hub.subscribers.delete(lane)
              continue
            }
            if (lane.buffer.free >= elements.length) {
              lane.buffer.push(elements)
              if (last !== undefined) lane.position = { after: last }
            } else {
              hub.subscribers.delete(lane)
              detached.push(lane)
            }
          }
          if (last !== undefined) hub.position = positionKey({ after: last })
          const more = hub.subscribers.size > 0
          if (!more) hub.generation++
          return detached.length === 0
            ? Effect.succeed(more)
            : Effect.as(
                Effect.forEach(detached, (lane) =>
                  Effect.logInfo(
                    `sink ${lane.spec.name} fell behind; it reads on its own until it catches up`
                  ).pipe(Effect.andThen(startOwnReader(lane)))
                ),
                more
              )
        })

      const hubReader = (start: EventStream.Start, generation: number) =>
        options.source.read(start, true).pipe(
          // Hands each page over as one array; stops when nobody is subscribed any more.
          Stream.runForEachArray((elements) =>
            roomFor(elements.length).pipe(
              Effect.andThen(publish(elements, generation)),
              Effect.flatMap((more) => (more ? Effect.void : Effect.interrupt))
            )
          ),
          Effect.catchCause((cause) => {
            if (Cause.hasInterruptsOnly(cause)) return Effect.void
            const failure = Cause.findErrorOption(cause)
            const rejection = failure._tag === "Some" ? rejectionOf(failure.value) : undefined
            if (rejection !== undefined) return reject(rejection)
            const wait = Math.max(pollInterval, 1000)
            // The message only: a stack trace says nothing to whoever runs the relay.
            return Effect.logError(
              `reading WorkOS failed; retrying in ${formatMillis(wait)}: ${describeFailure(Cause.squash(cause))}`
            ).pipe(
              Effect.andThen(Effect.sleep(wait)),
              // Whoever is subscribed now rejoins a fresh hub read from where they stand.
              Effect.andThen(
                Effect.suspend(() => {
                  const subscribers = [...hub.subscribers]
                  hub.subscribers.clear()
                  hub.generation++
                  return Effect.forEach(subscribers, (lane) =>
                    join(lane).pipe(
                      Effect.flatMap((ok) => (ok ? Effect.void : startOwnReader(lane)))
                    )
                  )
                })
              )
            )
          })
        )

      /** A lane reading on its own: pages from its cursor into its buffer, waiting for room, until it can rejoin. */
      const ownReader = (lane: Lane): Effect.Effect<void> =>
        Effect.gen(function* () {
          while (!lane.stopped && !stopping) {
            let read = 0
            const result = yield* options.source.read(lane.position, false).pipe(
              // A page at a time, as the hub hands them over.
              Stream.runForEachArray((elements) =>
                Effect.gen(function* () {
                  const cut = live ? -1 : elements.findIndex(pastUntil)
                  const page = cut < 0 ? elements : elements.slice(0, cut)
                  if (page.length > 0) {
                    yield* lane.buffer.waitSpace(page.length)
                    metrics.fetched += page.length
                    read += page.length
                    lane.buffer.push(page)
                    const last = lastCursor(page)
                    if (last !== undefined) lane.position = { after: last }
                  }
                  if (cut >= 0 || lane.stopped || stopping) return yield* new StopReading()
                })
              ),
              Effect.catchIf(
                (e) => e instanceof StopReading,
                () => Effect.void
              ),
              Effect.result
            )
            if (result._tag === "Failure") {
              const rejection = rejectionOf(result.failure)
              if (rejection !== undefined) return yield* reject(rejection)
              const wait = Math.max(pollInterval, 1000)
              yield* Effect.logError(
                `sink ${lane.spec.name}: reading WorkOS failed; retrying in ${formatMillis(wait)}: ${describeFailure(result.failure)}`
              )
              yield* Effect.sleep(wait)
              continue
            }
            if (!live) {
              // A replay reads once, to the end of the range (or of the stream).
              lane.buffer.ended = true
              lane.buffer.wake()
              return
            }
            if (yield* join(lane)) return
            if (read === 0) yield* Effect.sleep(pollInterval)
          }
        })

      // -- the lanes' consumers
      const commit = (lane: Lane, cursor: string, createdAt: string | null) =>
        live
          ? store.commit(lane.spec.name, cursor, createdAt, options.token()).pipe(
              Effect.tap(() =>
                Effect.sync(() => {
                  const m = metrics.sink(lane.spec.name)
                  m.cursor = cursor
                  m.checkpointAt = Date.now()
                  if (createdAt !== null) m.lagMs = Math.max(0, Date.now() - Date.parse(createdAt))
                })
              )
            )
          : Effect.void

      const consume = (lane: Lane): Effect.Effect<LaneReport, LeaseLost | StoreError> =>
        Effect.gen(function* () {
          const { spec, buffer } = lane
          const m = metrics.sink(spec.name)
          const maxEvents = spec.batch.maxEvents
          const maxBytes = spec.batch.maxBytes
          let delivered = 0
          let deadLettered = 0
          let doneCursor: string | undefined
          let doneCreatedAt: string | null = null
          let committed: string | undefined = m.cursor
          const streak = failureStreak()
          while (!stopping) {
            if (buffer.size === 0) {
              if (doneCursor !== undefined && doneCursor !== committed) {
                yield* commit(lane, doneCursor, doneCreatedAt)
                committed = doneCursor
              }
              if (buffer.ended) break
              m.lagEvents = 0
              yield* buffer.waitItems
              continue
            }
            const batch: Array<unknown> = []
            const immediate: Array<NewDeadLetter> = []
            let bytes = 0
            let lastCursor: string | undefined
            let lastCreatedAt: string | null = null
            const deadline = Date.now() + spec.batch.maxWait
            const fetchedAt = Date.now()
            while (batch.length < maxEvents) {
              const element = buffer.shift()
              if (element === undefined) {
                const left = deadline - Date.now()
                if (left <= 0 || batch.length === 0 || buffer.ended || stopping) break
                m.lagEvents = batch.length
                yield* Effect.raceFirst(buffer.waitItems, Effect.sleep(left))
                continue
              }
              if (element._tag === "Undecodable") {
                const raw = element.error.raw
                if (spec.accepts(element.error.type, raw)) {
                  const now = Date.now()
                  immediate.push({
                    ...deadLetter(raw, element.error.message, 0, now, now),
                    eventId: element.error.id ?? "(no id)",
                    eventType: element.error.type ?? "(no type)",
                    event: typeof raw === "string" ? raw : JSON.stringify(raw)
                  })
                }
              } else {
                const event = element.event
                if (spec.accepts(event.event, event)) {
                  if (maxBytes !== undefined) {
                    const size = Buffer_byteLength(event)
                    if (batch.length > 0 && bytes + size > maxBytes) {
                      buffer.unshift(element)
                      break
                    }
                    bytes += size
                  }
                  batch.push(event)
                } else m.filtered++
                lastCreatedAt = event.created_at
              }
              if (element.cursor !== undefined) lastCursor = element.cursor
            }
            m.lagEvents = buffer.size + batch.length
            if (batch.length > 0) {
              m.batches++
              const result = yield* Effect.result(
                deliver(spec, batch, metrics, fetchedAt, Deferred.await(halt), streak)
              )
              if (result._tag === "Failure") {
                // SinkFatal: this lane stops; its checkpoint stays before this batch.
                lane.stopped = true
                buffer.release()
                m.state = "failed"
                m.error = result.failure.reason
                yield* Effect.logError(`sink ${spec.name} stopped: ${result.failure.reason}`)
                return { name: spec.name, delivered, deadLettered, error: result.failure.reason }
              }
              delivered += result.success.delivered
              // What is left to do now, not what was when the batch was made.
              m.lagEvents = buffer.size
              if (result.success.abandoned) {
                yield* Effect.logWarning(
                  `sink ${spec.name}: stopped while its batch of ${batch.length} event(s) waited for a retry; the batch stays after its checkpoint and is delivered again on the next start`
                )
                break
              }
              immediate.push(...result.success.deadLetters)
            }
            if (immediate.length > 0) {
              yield* store.addDeadLetters(spec.name, immediate, live ? options.token() : null)
              deadLettered += immediate.length
              if (batch.length === 0) m.deadLettered += immediate.length
              yield* Effect.logWarning(
                `sink ${spec.name}: ${immediate.length} event(s) dead-lettered: ${immediate[0]!.error}`
              )
            }
            if (lastCursor !== undefined) {
              doneCursor = lastCursor
              doneCreatedAt = lastCreatedAt ?? doneCreatedAt
              // Commit after every delivered batch; runs of filtered events commit when the buffer drains.
              if (batch.length > 0 || immediate.length > 0) {
                yield* commit(lane, doneCursor, doneCreatedAt)
                committed = doneCursor
              }
            }
          }
          if (doneCursor !== undefined && doneCursor !== committed)
            yield* commit(lane, doneCursor, doneCreatedAt)
          lane.stopped = true
          buffer.release()
          if (m.state !== "failed") m.state = "stopped"
          return { name: spec.name, delivered, deadLettered, error: undefined }
        })

      // Lanes start detached, each from its own checkpoint, and join the hub as they catch up.
      yield* Effect.forEach(lanes, (lane) =>
        live
          ? join(lane).pipe(Effect.flatMap((ok) => (ok ? Effect.void : startOwnReader(lane))))
          : startOwnReader(lane)
      )

      // First stop signal (or a rejection): stop reading, wake idle lanes; busy ones finish their batch.
      yield* Deferred.await(halt).pipe(
        Effect.andThen(
          Effect.sync(() => {
            stopping = true
            hub.generation++
            for (const lane of lanes) lane.buffer.wake()
          })
        ),
        Effect.forkIn(scope)
      )
      const all = Effect.forEach(lanes, consume, { concurrency: "unbounded" })
      const deadline = Deferred.await(halt).pipe(
        Effect.andThen(Effect.sleep(options.shutdownTimeout)),
        Effect.andThen(
          Effect.logWarning(
            `in-flight batches did not finish within ${options.shutdownTimeout}ms; stopping anyway`
          )
        ),
        Effect.andThen(
          Effect.sync(() =>
            lanes.map((lane) => {
              const m = options.metrics.sink(lane.spec.name)
              if (!lane.stopped && m.state !== "failed") m.state = "interrupted"
              return {
                name: lane.spec.name,
                delivered: 0,
                deadLettered: 0,
                error: "interrupted at shutdown"
              }
            })
          )
        )
      )
      const reports = yield* Effect.raceFirst(all, deadline)
      if (rejected !== undefined) return yield* Effect.fail(rejected)
      return reports
    })
  )

const lastCursor = (elements: ReadonlyArray<Element>): string | undefined => {
  for (let i = elements.length - 1; i >= 0; i--) {
    const cursor = elements[i]!.cursor
    if (cursor !== undefined) return cursor
  }
  return undefined
}

const Buffer_byteLength = (event: unknown): number =>
  Buffer.byteLength(JSON.stringify(event), "utf8")
