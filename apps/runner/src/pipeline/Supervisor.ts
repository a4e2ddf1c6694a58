/**
 * The supervisor: wires the lanes (one per sink, `Lane.ts`) to the readers that
 * feed them (`Reader.ts`), and handles the end of a run: the first stop signal (or
 * WorkOS rejecting what we ask) stops reading and wakes idle lanes; busy ones finish
 * their batch within the shutdown deadline.
 */
import type { EventStream } from "@workos-relay/core"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type { Metrics } from "../Observability.ts"
import type { LeaseLost, Service as Store, StoreError } from "../StateStore.ts"
import {
  defaultBufferSize,
  keyOf,
  Lane,
  type LaneContext,
  type LaneReport,
  type LaneSpec
} from "./Lane.ts"
import { Readers, type Source } from "./Reader.ts"
import type { SourceRejected } from "./Rejection.ts"
import * as Retention from "./Retention.ts"
import * as Start from "./Start.ts"

export interface Options {
  readonly lanes: ReadonlyArray<LaneSpec>
  readonly source: Source
  readonly store: Store
  /** The fencing token of the lease held now (null: no lease, as in replay). */
  readonly token: () => number | null
  readonly metrics: Metrics
  /** Where a sink without a checkpoint starts (`latest` already resolved: `Start.resolve`). */
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
  /** How long WorkOS keeps events (ms; default 30 days): see `Retention.ts`. */
  readonly retention?: number | undefined
}

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
      let stopping = false
      const live = options.mode._tag === "live"
      const context: LaneContext = {
        store: options.store,
        metrics: options.metrics,
        token: options.token,
        live,
        halted: Deferred.await(halt),
        stopping: () => stopping
      }
      const lanes = yield* Effect.forEach(options.lanes, (spec) => makeLane(spec, options, context))
      const readers = new Readers({
        source: options.source,
        metrics: options.metrics,
        live,
        pollInterval: options.mode._tag === "live" ? options.mode.pollInterval : 0,
        until: options.mode._tag === "replay" ? options.mode.until : Number.POSITIVE_INFINITY,
        scope,
        reject: (rejection) =>
          Effect.suspend(() => {
            rejected ??= rejection
            return Deferred.succeed(halt, undefined)
          }),
        stopping: () => stopping
      })

      // Lanes start detached, each from its own checkpoint, and join the hub as they catch up.
      yield* Effect.forEach(lanes, (lane) => readers.attach(lane))
      if (live)
        yield* Retention.watch(
          lanes,
          options.metrics,
          options.retention ?? Retention.defaultRetention
        ).pipe(Effect.forkIn(scope))

      // First stop signal (or a rejection): stop reading, wake idle lanes; busy ones finish their batch.
      yield* Deferred.await(halt).pipe(
        Effect.andThen(
          Effect.sync(() => {
            stopping = true
            readers.stop()
            for (const lane of lanes) lane.buffer.wake()
          })
        ),
        Effect.forkIn(scope)
      )
      const all = Effect.forEach(lanes, (lane) => lane.run(), { concurrency: "unbounded" })
      const deadline = Deferred.await(halt).pipe(
        Effect.andThen(Effect.sleep(options.shutdownTimeout)),
        Effect.andThen(
          Effect.logWarning(
            `in-flight batches did not finish within ${options.shutdownTimeout}ms; stopping anyway`
          )
        ),
        Effect.andThen(Effect.sync(() => lanes.map((lane) => interrupted(lane, options.metrics))))
      )
      const reports = yield* Effect.raceFirst(all, deadline)
      if (rejected !== undefined) return yield* Effect.fail(rejected)
      return reports
    })
  )

/**
 * A lane from its checkpoint (run) or from the run's start (no checkpoint, or
 * replay). A run saves a lane's start at once when it is a time (`latest` resolved,
 * or `since`), before any event is delivered: see `Start.ts`.
 */
const makeLane = (
  spec: LaneSpec,
  options: Options,
  context: LaneContext
): Effect.Effect<Lane, StoreError | LeaseLost> =>
  Effect.gen(function* () {
    const key = keyOf(spec)
    let checkpoint = context.live
      ? yield* options.store.checkpoint(key.sink, key.source)
      : undefined
    const first = Start.toCheckpoint(options.start)
    if (context.live && checkpoint === undefined && first !== undefined) {
      yield* options.store.commit(key.sink, first, null, options.token(), key.source)
      checkpoint = yield* options.store.checkpoint(key.sink, key.source)
    }
    const m = options.metrics.sink(spec.name)
    m.cursor = checkpoint?.cursor
    m.checkpointAt = checkpoint?.updatedAt ?? 0
    const start = checkpoint === undefined ? options.start : Start.fromCheckpoint(checkpoint)
    return new Lane(spec, start, defaultBufferSize(spec, options.bufferSize), context)
  })

/** The report of a lane cut off at the shutdown deadline. */
const interrupted = (lane: Lane, metrics: Metrics): LaneReport => {
  const m = metrics.sink(lane.spec.name)
  if (!lane.stopped && m.state !== "failed") m.state = "interrupted"
  return { name: lane.spec.name, delivered: 0, deadLettered: 0, error: "interrupted at shutdown" }
}
