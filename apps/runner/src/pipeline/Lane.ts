/**
 * A lane: one sink's side of the pipeline. It takes events from its own buffer,
 * filters them (the sink's patterns, the config's `events` and `organizations`),
 * batches them (maxEvents, maxBytes, maxWait), delivers each batch with retries
 * (`Delivery.deliver`), records dead letters, and moves its own checkpoint.
 *
 * The checkpoint moves past a batch only once every event of it was delivered or
 * dead-lettered: a crash at any instant loses nothing (events after the checkpoint
 * are delivered again: at least once). Who fills the buffer is not the lane's
 * concern (see `Reader.ts`); the lane only says where its reading has got to
 * (`position`).
 */
import { type Event, type EventStream, Sink } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import type { Metrics, SinkMetrics } from "../Observability.ts"
import type { LeaseLost, NewDeadLetter, Service as Store, StoreError } from "../StateStore.ts"
import { defaultSource } from "../state/Model.ts"
import { type DeliverySpec, deadLetter, deliver, failureStreak } from "./Delivery.ts"
import type { Accepts } from "./Filter.ts"
import { LaneBuffer } from "./LaneBuffer.ts"
import * as Start from "./Start.ts"

export interface LaneSpec extends DeliverySpec {
  readonly batch: {
    readonly maxEvents: number
    readonly maxBytes?: number | undefined
    readonly maxWait: number
  }
  /** Whether the sink takes an event of this type (undefined: unknown) with this payload. */
  readonly accepts: Accepts
  /**
   * The sink takes raw events (`Sink.Definition.raw`): one whose payload breaks the
   * spec reaches it as WorkOS sent it, marked (`Sink.mismatchOf`), instead of being
   * dead-lettered.
   */
  readonly raw?: boolean | undefined
  /**
   * Where its checkpoint and dead letters are kept: the sink's name and the source's
   * (undefined: `name`, and source `default`, as with a file's one `source:`).
   */
  readonly key?: LaneKey | undefined
}

/** A lane's place in the state store: one sink fed by one source. */
export interface LaneKey {
  readonly sink: string
  readonly source: string
}

/** The store key of a lane. */
export const keyOf = (spec: Pick<LaneSpec, "name" | "key">): LaneKey =>
  spec.key ?? { sink: spec.name, source: defaultSource }

export interface LaneReport {
  readonly name: string
  readonly delivered: number
  readonly deadLettered: number
  /** Why the lane stopped early (SinkFatal). */
  readonly error: string | undefined
}

/** What a lane needs of the run it is part of. */
export interface LaneContext {
  readonly store: Store
  readonly metrics: Metrics
  /** The fencing token of the lease held now (null: no lease, as in replay). */
  readonly token: () => number | null
  /** `true`: checkpoints are committed (run); `false`: none is touched (replay). */
  readonly live: boolean
  /** Completes once the run is stopping: a retry under way is abandoned. */
  readonly halted: Effect.Effect<void>
  /** Whether the run is stopping, read between batches. */
  readonly stopping: () => boolean
}

/** One batch taken from the buffer, and how far it took the lane. */
interface Batch {
  readonly events: Array<unknown>
  /** Events that cannot be delivered at all (they failed to decode): dead letters at once. */
  readonly deadLetters: Array<NewDeadLetter>
  /** How many of `deadLetters` failed to decode (`deliver` adds and counts its own). */
  readonly undecodable: number
  /** The cursor after the last element taken (filtered ones included). */
  readonly cursor: string | undefined
  readonly createdAt: string | null
  readonly fetchedAt: number
}

/** A batch being gathered from the buffer. */
interface Gathering {
  readonly events: Array<unknown>
  readonly deadLetters: Array<NewDeadLetter>
  cursor: string | undefined
  createdAt: string | null
  readonly fetchedAt: number
  bytes: number
  filtered: number
}

/** Events a lane may hold: two of its batches (at least 1,000), unless the run says otherwise. */
export const defaultBufferSize = (spec: LaneSpec, bufferSize: number | undefined): number =>
  Math.max(bufferSize ?? Math.max(2 * spec.batch.maxEvents, 1000), 200)

export class Lane {
  readonly buffer: LaneBuffer
  /** Where the lane's reading has got to: the next read starts here. */
  position: EventStream.Start
  /** Which reader feeds the buffer. */
  reader: "hub" | "own" | "none" = "none"
  stopped = false
  readonly metrics: SinkMetrics
  private delivered = 0
  private deadLettered = 0
  /** The cursor after the last element done with, and the checkpoint as stored. */
  private doneCursor: string | undefined
  private doneCreatedAt: string | null = null
  private committed: string | undefined
  private readonly streak = failureStreak()
  /** When the last event done with was created (ms), or the instant the lane starts from. */
  private doneAt: number | undefined

  readonly spec: LaneSpec
  private readonly context: LaneContext

  constructor(spec: LaneSpec, start: EventStream.Start, bufferSize: number, context: LaneContext) {
    this.spec = spec
    this.context = context
    this.buffer = new LaneBuffer(bufferSize)
    this.position = start
    this.doneAt = Start.timeOf(start)
    this.metrics = context.metrics.sink(spec.name)
    this.committed = this.metrics.cursor
  }

  /** Delivers batch after batch until the buffer ends (replay), the run stops, or the sink fails fatally. */
  run(): Effect.Effect<LaneReport, LeaseLost | StoreError> {
    const lane = this
    return Effect.gen(function* () {
      const { buffer, context } = lane
      while (!context.stopping()) {
        if (buffer.size === 0) {
          yield* lane.commitDone()
          if (buffer.ended) break
          lane.metrics.lagEvents = 0
          yield* buffer.waitItems
          continue
        }
        // The batch is not a local of this loop: it would stay reachable from here
        // while the next one fills, and so be kept through young-generation GCs.
        const outcome = yield* Effect.flatMap(lane.takeBatch(), (batch) => lane.finishBatch(batch))
        if (outcome === "failed") return lane.report(lane.metrics.error)
        if (outcome === "abandoned") break
      }
      yield* lane.commitDone()
      lane.stop()
      if (lane.metrics.state !== "failed") lane.metrics.state = "stopped"
      return lane.report(undefined)
    })
  }

  /**
   * Delivers a batch, records its dead letters and moves the checkpoint past it.
   *
   * Here and in the other steps run once a batch, effects are composed rather than
   * written as generators: a generator made for each batch kept the batch reachable
   * after it was done, and so alive through young-generation GCs (about a third of
   * every event read was promoted to the old generation; bench/backfill.ts).
   */
  private finishBatch(
    batch: Batch
  ): Effect.Effect<"done" | "abandoned" | "failed", LeaseLost | StoreError> {
    return Effect.flatMap(this.deliverBatch(batch), (outcome) =>
      outcome !== "done"
        ? Effect.succeed(outcome)
        : this.recordDeadLetters(batch).pipe(
            Effect.andThen(Effect.suspend(() => this.passBatch(batch))),
            Effect.as(outcome)
          )
    )
  }

  /** Moves the lane past a batch done with: its position, and the checkpoint when it delivered anything. */
  private passBatch(batch: Batch): Effect.Effect<void, LeaseLost | StoreError> {
    if (batch.cursor === undefined) return Effect.void
    this.doneCursor = batch.cursor
    this.doneCreatedAt = batch.createdAt ?? this.doneCreatedAt
    if (batch.createdAt !== null) this.doneAt = Date.parse(batch.createdAt)
    // Commit after every delivered batch; runs of filtered events commit when the buffer drains.
    return batch.events.length > 0 || batch.deadLetters.length > 0 ? this.commitDone() : Effect.void
  }

  /**
   * When the oldest event the lane has still to deliver was created, at the latest
   * (the last one done with): undefined when it has nothing to do, as far as it knows.
   */
  oldestUnread(): number | undefined {
    if (this.buffer.size === 0 && this.reader !== "own") return undefined
    return this.doneAt
  }

  /** The lane takes nothing more: a reader waiting for room in its buffer goes on. */
  stop(): void {
    this.stopped = true
    this.buffer.release()
  }

  private report(error: string | undefined): LaneReport {
    return {
      name: this.spec.name,
      delivered: this.delivered,
      deadLettered: this.deadLettered,
      error
    }
  }

  /** Takes up to `maxEvents` (and `maxBytes`) from the buffer, waiting at most `maxWait` for more. */
  private takeBatch(): Effect.Effect<Batch> {
    return Effect.suspend(() => {
      const fetchedAt = Date.now()
      const gathering: Gathering = {
        events: [],
        deadLetters: [],
        cursor: undefined,
        createdAt: null,
        fetchedAt,
        bytes: 0,
        filtered: 0
      }
      return this.fill(gathering, fetchedAt + this.spec.batch.maxWait)
    })
  }

  /** Moves what the buffer holds into the batch; while it is not full, waits for more until `deadline`. */
  private fill(batch: Gathering, deadline: number): Effect.Effect<Batch> {
    const { spec, buffer, context, metrics } = this
    while (batch.events.length < spec.batch.maxEvents) {
      const element = buffer.shift()
      if (element === undefined) {
        const left = deadline - Date.now()
        // Nothing more comes before the reader's next poll when it has caught up.
        const more = !buffer.ended && !buffer.caughtUp && !context.stopping()
        if (left <= 0 || batch.events.length === 0 || !more) break
        metrics.lagEvents = batch.events.length
        return Effect.flatMap(Effect.raceFirst(buffer.waitItems, Effect.sleep(left)), () =>
          this.fill(batch, deadline)
        )
      }
      if (element._tag === "Undecodable")
        return Effect.flatMap(this.asSent(element), (event) =>
          this.add(batch, element, event) ? this.fill(batch, deadline) : this.close(batch)
        )
      if (!this.add(batch, element, element.event)) break
    }
    return this.close(batch)
  }

  /**
   * Adds an element taken from the buffer to the batch (`event`: what the sink would
   * get of it; undefined for a dead letter or nothing). False when the batch has no
   * room for its bytes: the element is back in the buffer.
   */
  private add(
    batch: Gathering,
    element: EventStream.Element,
    event: Event.Any | undefined
  ): boolean {
    const { spec, buffer } = this
    if (event === undefined) {
      const letter = undecodableLetter(spec, element as EventStream.Undecodable)
      if (letter !== undefined) batch.deadLetters.push(letter)
    } else {
      if (spec.accepts(event.event, event)) {
        const { maxBytes } = spec.batch
        if (maxBytes !== undefined) {
          const size = byteLength(event)
          if (batch.events.length > 0 && batch.bytes + size > maxBytes) {
            buffer.unshift(element)
            return false
          }
          batch.bytes += size
        }
        batch.events.push(event)
      } else batch.filtered++
      // An event that broke the spec may have any created_at.
      if (element._tag === "Event") batch.createdAt = event.created_at
    }
    if (element.cursor !== undefined) batch.cursor = element.cursor
    return true
  }

  /** The batch as gathered, its counts told to the metrics. */
  private close(batch: Gathering): Effect.Effect<Batch> {
    const { metrics, buffer } = this
    // Counted once a batch: an update of an effect Metric is a few Map lookups.
    metrics.filteredCount.add(batch.filtered)
    metrics.lagEvents = buffer.size + batch.events.length
    const { events, deadLetters, cursor, createdAt, fetchedAt } = batch
    return Effect.succeed({
      events,
      deadLetters,
      undecodable: deadLetters.length,
      cursor,
      createdAt,
      fetchedAt
    })
  }

  /**
   * An event that failed to decode but has an id and a type (its payload breaks the
   * spec), when this sink takes it: counted (once per run, whichever lanes take it)
   * and told once per type; a raw sink gets it as WorkOS sent it, marked. Undefined
   * for anything else: a dead letter, as for a typed sink (or nothing, when filtered).
   */
  private asSent(element: EventStream.Undecodable): Effect.Effect<Event.Any | undefined> {
    const { spec, context } = this
    const { id, type, raw, path, reason } = element.error
    if (id === undefined || type === undefined || !spec.accepts(type, raw))
      return Effect.succeed(undefined)
    const event = spec.raw === true ? Sink.mismatched(element.error) : undefined
    if (!context.metrics.specMismatch(id, type)) return Effect.succeed(event)
    return Effect.as(
      Effect.logWarning(
        `event type ${type} does not match the spec${path === "" ? "" : ` at ${path}`}: ${reason}; raw sinks get it as sent, typed sinks dead-letter it`
      ),
      event
    )
  }

  /** Delivers the batch's events; a fatal sink failure stops the lane, its checkpoint before the batch. */
  private deliverBatch(batch: Batch): Effect.Effect<"done" | "abandoned" | "failed"> {
    const { spec, metrics, context } = this
    if (batch.events.length === 0) return Effect.succeed("done")
    metrics.batches++
    const delivery = deliver(
      spec,
      batch.events,
      context.metrics,
      batch.fetchedAt,
      context.halted,
      this.streak
    )
    return Effect.matchEffect(delivery, {
      onFailure: (failure) => {
        this.stop()
        metrics.state = "failed"
        metrics.error = failure.reason
        return Effect.as(Effect.logError(`sink ${spec.name} stopped: ${failure.reason}`), "failed")
      },
      onSuccess: (result) => {
        this.delivered += result.delivered
        // What is left to do now, not what was when the batch was made.
        metrics.lagEvents = this.buffer.size
        if (result.abandoned)
          return Effect.as(
            Effect.logWarning(
              `sink ${spec.name}: stopped while its batch of ${batch.events.length} event(s) waited for a retry; the batch stays after its checkpoint and is delivered again on the next start`
            ),
            "abandoned"
          )
        batch.deadLetters.push(...result.deadLetters)
        return Effect.succeed("done")
      }
    })
  }

  private recordDeadLetters(batch: Batch): Effect.Effect<void, LeaseLost | StoreError> {
    const letters = batch.deadLetters
    if (letters.length === 0) return Effect.void
    const { spec, context } = this
    const key = keyOf(spec)
    return context.store
      .addDeadLetters(key.sink, letters, context.live ? context.token() : null, key.source)
      .pipe(
        Effect.andThen(
          Effect.suspend(() => {
            this.deadLettered += letters.length
            // `deliver` counted its own; these failed to decode and never reached it.
            this.metrics.deadLetteredCount.add(batch.undecodable)
            return Effect.logWarning(
              `sink ${spec.name}: ${letters.length} event(s) dead-lettered: ${letters[0]!.error}`
            )
          })
        )
      )
  }

  /** Moves the checkpoint to the last element done with, if it is not there yet (run only). */
  private commitDone(): Effect.Effect<void, LeaseLost | StoreError> {
    const cursor = this.doneCursor
    if (cursor === undefined || cursor === this.committed) return Effect.void
    const { context, metrics } = this
    if (!context.live) return Effect.void
    const createdAt = this.doneCreatedAt
    const key = keyOf(this.spec)
    return context.store.commit(key.sink, cursor, createdAt, context.token(), key.source).pipe(
      Effect.tap(() =>
        Effect.sync(() => {
          this.committed = cursor
          metrics.cursor = cursor
          metrics.checkpointAt = Date.now()
          if (createdAt !== null) metrics.lagMs = Math.max(0, Date.now() - Date.parse(createdAt))
        })
      )
    )
  }
}

/** The dead letter of an event that failed to decode, if the lane would have taken it. */
const undecodableLetter = (
  spec: LaneSpec,
  element: EventStream.Undecodable
): NewDeadLetter | undefined => {
  const { raw, type, id, message } = element.error
  if (!spec.accepts(type, raw)) return undefined
  const now = Date.now()
  return {
    ...deadLetter(raw, message, 0, now, now),
    eventId: id ?? "(no id)",
    eventType: type ?? "(no type)",
    event: typeof raw === "string" ? raw : JSON.stringify(raw)
  }
}

const byteLength = (event: unknown): number => Buffer.byteLength(JSON.stringify(event), "utf8")
