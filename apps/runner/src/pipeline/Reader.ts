/**
 * Reading WorkOS for the lanes, fetching each event once while every sink keeps up.
 *
 * One shared reader (the hub) reads WorkOS and hands every page to the buffers of
 * the lanes subscribed to it. A lane whose buffer has no room for a page (its sink
 * fell behind) is detached: it then reads from its own cursor with its own
 * requests, at its own pace, and nobody waits for it. (When no lane has room,
 * waiting holds back nobody, and the hub waits.) When its own reading catches up
 * with the hub (its last event is the hub's last event), it rejoins. The join is a
 * comparison of cursors done synchronously between two pages, so a lane never gets
 * an event twice or misses one when it changes readers.
 *
 * Reading failures that retrying can fix (429, 5xx, a broken connection) are retried
 * for as long as it takes. An answer that retrying cannot fix is handed to `reject`.
 */
import type { EventStream } from "@workos-relay/core"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { describeFailure, formatMillis } from "../internal/Text.ts"
import type { Metrics } from "../Observability.ts"
import type { Lane } from "./Lane.ts"
import { rejectionOf, type SourceRejected } from "./Rejection.ts"

export type Element = EventStream.Element

/**
 * Where events come from: a stream from a position on; `follow: false` ends once caught
 * up. A following read calls `onCaughtUp` each time it has caught up, with the cursor of
 * the last element it handed on (see `EventStream.Options.onCaughtUp`).
 */
export interface Source {
  readonly read: (
    start: EventStream.Start,
    follow: boolean,
    onCaughtUp?: (cursor: string | undefined) => void
  ) => Stream.Stream<Element, unknown>
}

export interface ReaderContext {
  readonly source: Source
  readonly metrics: Metrics
  /** `true`: follow the stream for ever (run); `false`: read up to `until` once (replay). */
  readonly live: boolean
  readonly pollInterval: number
  /** In replay, where the range ends (ms since the epoch). */
  readonly until: number
  /** Where reader fibers run: they end with the run. */
  readonly scope: Scope.Scope
  /** WorkOS refused what we ask: the run stops. */
  readonly reject: (rejection: SourceRejected) => Effect.Effect<void>
  readonly stopping: () => boolean
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

export class Readers {
  /** Bumped whenever the hub's reading is abandoned: a page of an older one is dropped. */
  private generation = 0
  private position: string | undefined
  /** The cursor of the last element the hub handed on. */
  private published: string | undefined
  /** The reading caught up at this cursor, not handed on yet: the lanes are told once it is. */
  private caughtUpAt: string | undefined
  private readonly subscribers = new Set<Lane>()
  private fiber: Fiber.Fiber<unknown, unknown> | undefined

  private readonly context: ReaderContext

  constructor(context: ReaderContext) {
    this.context = context
  }

  /** Starts feeding a lane: from the hub when it stands where the hub stands, else on its own. */
  attach(lane: Lane): Effect.Effect<void> {
    return this.context.live
      ? this.join(lane).pipe(Effect.flatMap((ok) => (ok ? Effect.void : this.startOwn(lane))))
      : this.startOwn(lane)
  }

  /** The run is stopping: a page the hub reads now is handed to nobody. */
  stop(): void {
    this.generation++
  }

  private startOwn(lane: Lane): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      lane.reader = "own"
      this.context.metrics.sink(lane.spec.name).state = "detached"
      yield* this.ownReader(lane).pipe(Effect.forkIn(this.context.scope))
    })
  }

  /** Subscribes a lane when it stands where the hub stands (or the hub is idle). Synchronous check. */
  private join(lane: Lane): Effect.Effect<boolean> {
    return Effect.suspend(() => {
      if (lane.stopped || this.context.stopping()) return Effect.succeed(false)
      const key = positionKey(lane.position)
      if (this.subscribers.size > 0 && this.position !== key) return Effect.succeed(false)
      this.subscribers.add(lane)
      lane.reader = "hub"
      const m = this.context.metrics.sink(lane.spec.name)
      if (m.state === "detached" || m.state === "starting") m.state = "running"
      if (this.subscribers.size > 1) return Effect.succeed(true)
      // The hub was idle: it starts reading where this lane stands.
      const generation = ++this.generation
      this.position = key
      const previous = this.fiber
      const scope = this.context.scope
      return Effect.gen({ self: this }, function* () {
        if (previous !== undefined) yield* Fiber.interrupt(previous).pipe(Effect.forkIn(scope))
        this.fiber = yield* this.hubReader(lane.position, generation).pipe(Effect.forkIn(scope))
        return true
      })
    })
  }

  /**
   * When no subscribed lane has room for a page, waiting holds back no other lane:
   * the hub waits for the first to make room instead of detaching them all (each
   * would then fetch the same pages on its own).
   */
  private roomFor(n: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      const waiting = [...this.subscribers].filter((lane) => !lane.stopped)
      if (waiting.length === 0 || waiting.some((lane) => lane.buffer.free >= n)) return Effect.void
      return Effect.raceAll(waiting.map((lane) => lane.buffer.waitSpace(n)))
    })
  }

  /** Hands a page to every subscriber with room; detaches the others. Whether anyone is left. */
  private publish(elements: ReadonlyArray<Element>, generation: number): Effect.Effect<boolean> {
    return Effect.suspend(() => {
      if (generation !== this.generation) return Effect.succeed(false)
      this.context.metrics.fetchedCount.add(elements.length)
      const last = lastCursor(elements)
      const detached: Array<Lane> = []
      for (const lane of this.subscribers) {
        if (lane.stopped) {
          this.subscribers.delete(lane)
          continue
        }
        if (lane.buffer.free >= elements.length) {
          lane.buffer.push(elements)
          if (last !== undefined) lane.position = { after: last }
        } else {
          this.subscribers.delete(lane)
          detached.push(lane)
        }
      }
      if (last !== undefined) {
        this.position = positionKey({ after: last })
        this.published = last
        if (last === this.caughtUpAt) this.tellCaughtUp()
      }
      const more = this.subscribers.size > 0
      if (!more) this.generation++
      if (detached.length === 0) return Effect.succeed(more)
      return Effect.as(
        Effect.forEach(detached, (lane) =>
          Effect.logInfo(
            `sink ${lane.spec.name} fell behind; it reads on its own until it catches up`
          ).pipe(Effect.andThen(this.startOwn(lane)))
        ),
        more
      )
    })
  }

  /**
   * The hub's reading caught up at `cursor`: once the element with it is handed on,
   * the lanes know nothing more comes before the next poll (a batch need not wait).
   */
  private caughtUp(cursor: string | undefined, generation: number): void {
    if (generation !== this.generation) return
    if (cursor === this.published) this.tellCaughtUp()
    else this.caughtUpAt = cursor
  }

  private tellCaughtUp(): void {
    this.caughtUpAt = undefined
    for (const lane of this.subscribers) lane.buffer.readerCaughtUp()
  }

  private hubReader(start: EventStream.Start, generation: number): Effect.Effect<void> {
    this.published = typeof start === "object" && "after" in start ? start.after : undefined
    this.caughtUpAt = undefined
    const onCaughtUp = (cursor: string | undefined) => this.caughtUp(cursor, generation)
    return this.context.source.read(start, true, onCaughtUp).pipe(
      // Hands each page over as one array; stops when nobody is subscribed any more.
      Stream.runForEachArray((elements) =>
        this.roomFor(elements.length).pipe(
          Effect.andThen(this.publish(elements, generation)),
          Effect.flatMap((more) => (more ? Effect.void : Effect.interrupt))
        )
      ),
      Effect.catchCause((cause) => this.hubFailed(cause))
    )
  }

  /** The hub's reading failed: after a pause, whoever is subscribed rejoins a fresh read from where they stand. */
  private hubFailed(cause: Cause.Cause<unknown>): Effect.Effect<void> {
    if (Cause.hasInterruptsOnly(cause)) return Effect.void
    const failure = Cause.findErrorOption(cause)
    const rejection = failure._tag === "Some" ? rejectionOf(failure.value) : undefined
    if (rejection !== undefined) return this.context.reject(rejection)
    const wait = this.retryWait()
    // The message only: a stack trace says nothing to whoever runs the relay.
    return Effect.logError(
      `reading WorkOS failed; retrying in ${formatMillis(wait)}: ${describeFailure(Cause.squash(cause))}`
    ).pipe(
      Effect.andThen(Effect.sleep(wait)),
      Effect.andThen(
        Effect.suspend(() => {
          const subscribers = [...this.subscribers]
          this.subscribers.clear()
          this.generation++
          return Effect.forEach(subscribers, (lane) => this.attach(lane))
        })
      )
    )
  }

  private retryWait(): number {
    return Math.max(this.context.pollInterval, 1000)
  }

  /** A lane reading on its own: pages from its cursor into its buffer, waiting for room, until it can rejoin. */
  private ownReader(lane: Lane): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      const { context } = this
      while (!lane.stopped && !context.stopping()) {
        const result = yield* Effect.result(this.readOnce(lane))
        if (result._tag === "Failure") {
          const rejection = rejectionOf(result.failure)
          if (rejection !== undefined) return yield* context.reject(rejection)
          const wait = this.retryWait()
          yield* Effect.logError(
            `sink ${lane.spec.name}: reading WorkOS failed; retrying in ${formatMillis(wait)}: ${describeFailure(result.failure)}`
          )
          yield* Effect.sleep(wait)
          continue
        }
        if (!context.live) {
          // A replay reads once, to the end of the range (or of the stream).
          lane.buffer.ended = true
          lane.buffer.wake()
          return
        }
        if (yield* this.join(lane)) return
        if (result.success === 0) yield* Effect.sleep(context.pollInterval)
      }
    })
  }

  /** Reads from the lane's position to the end of the stream (or of a replay's range); how many events. */
  private readOnce(lane: Lane): Effect.Effect<number, unknown> {
    const { context } = this
    const pastUntil = (element: Element) => {
      const raw: any = element._tag === "Event" ? element.event : element.error.raw
      const created = Date.parse(raw?.created_at)
      return !Number.isNaN(created) && created >= context.until
    }
    let read = 0
    return context.source.read(lane.position, false).pipe(
      // A page at a time, as the hub hands them over.
      Stream.runForEachArray((elements) =>
        Effect.gen(function* () {
          const cut = context.live ? -1 : elements.findIndex(pastUntil)
          const page = cut < 0 ? elements : elements.slice(0, cut)
          if (page.length > 0) {
            yield* lane.buffer.waitSpace(page.length)
            context.metrics.fetchedCount.add(page.length)
            read += page.length
            lane.buffer.push(page)
            const last = lastCursor(page)
            if (last !== undefined) lane.position = { after: last }
          }
          if (cut >= 0 || lane.stopped || context.stopping()) return yield* new StopReading()
        })
      ),
      Effect.catchIf(
        (e) => e instanceof StopReading,
        () => Effect.void
      ),
      Effect.map(() => read)
    )
  }
}

const lastCursor = (elements: ReadonlyArray<Element>): string | undefined => {
  for (let i = elements.length - 1; i >= 0; i--) {
    const cursor = elements[i]!.cursor
    if (cursor !== undefined) return cursor
  }
  return undefined
}
