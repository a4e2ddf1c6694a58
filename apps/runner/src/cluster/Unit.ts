/**
 * A unit of work in cluster mode: one source with its lanes (the lanes of every sink
 * that takes it). It runs as an `effect/cluster` singleton, so on one
 * runner at a time; around a move it may briefly run on two, so each start claims
 * the unit's fencing token (the lease row `unit:<name>`, next token) and every
 * checkpoint and dead letter is written only while the row still holds it.
 */
import type { Sink } from "@workos-relay/core"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import { type RelayConfig, sourcesOf, sourcesOfSink } from "../config/Schema.ts"
import { describeFailure } from "../internal/Text.ts"
import type { Metrics } from "../Observability.ts"
import * as Pipeline from "../Pipeline.ts"
import * as Runner from "../Runner.ts"
import type { LeaseLost, Service as Store, StoreError } from "../StateStore.ts"
import type { ClusterConsole } from "./Console.ts"
import type { ClusterWebhooks } from "./Webhooks.ts"

export interface Unit {
  /** The source's name (`default` for the config's `source`). */
  readonly name: string
}

/** The units of a config: one per source (`default` for a file's one `source:`). */
export const unitsOf = (config: RelayConfig): ReadonlyArray<Unit> =>
  sourcesOf(config).map((source) => ({ name: source.name }))

/** The lease row whose token fences a unit's writes. */
export const leaseName = (unit: Unit): string => `unit:${unit.name}`

/** The cluster singleton's name of a unit. */
export const singletonName = (unit: Unit): string => `workos-relay/unit/${unit.name}`

const running = Metric.gauge("workos_relay_cluster_unit_running", {
  description: "1 while this runner runs the unit (its source and lanes), else 0"
})
const starts = Metric.counter("workos_relay_cluster_unit_starts_total", {
  description: "Times this runner started the unit (it moved here, or restarted after an error)"
})
const refused = Metric.counter("workos_relay_cluster_fenced_writes_total", {
  description: "Checkpoint or dead-letter writes refused: another runner claimed the unit since"
})

export interface UnitDeps {
  readonly config: RelayConfig
  /** This runner's address (host:port), written as the unit's holder. */
  readonly runner: string
  /** The store, its commits fenced by the unit's lease row. */
  readonly store: Store
  /** Claims the unit's next fencing token. */
  readonly claim: Effect.Effect<number, StoreError>
  readonly metrics: Metrics
  /** How long to wait after a refused write before claiming again (the lock expiry). */
  readonly lockExpiry: number
  /** The webhook doorbell (with `webhooks`): rings the unit's reader while it runs here. */
  readonly webhooks?: ClusterWebhooks | undefined
  /** The operator console (with `console`): the unit's lanes and tap while it runs here. */
  readonly console?: Pick<ClusterConsole, "lanes" | "tap"> | undefined
}

/**
 * Runs the unit until interrupted (the shard moved away, or this runner stops): then
 * its in-flight batches finish within `shutdownTimeout` and their checkpoints commit.
 * Errors restart it after a pause; it never ends by itself (a singleton that ends is
 * not started again until its shard moves).
 */
export const run = (unit: Unit, deps: UnitDeps): Effect.Effect<void> => {
  // `source`, not `unit`: Prometheus output drops a `unit` attribute (the unit of measure).
  const attributes = { source: unit.name, runner: deps.runner }
  const once = Effect.scoped(
    Effect.gen(function* () {
      const token = yield* deps.claim
      yield* Metric.update(Metric.withAttributes(starts, attributes), 1)
      yield* Effect.logInfo(`unit ${unit.name}: running here (fencing token ${token})`)
      const stop = yield* Deferred.make<void>()
      // Refused writes are told however the copy ends: failing, or stopping as its shard moved.
      const refusedHere = (lost: LeaseLost) =>
        Metric.update(Metric.withAttributes(refused, attributes), 1).pipe(
          Effect.andThen(
            Effect.logWarning(
              `unit ${unit.name}: a write with token ${lost.token} was refused: another runner (${lost.holder}) claimed the unit since; this copy stops`
            )
          )
        )
      const fiber = yield* Effect.forkDetach(
        pipeline(unit, deps, token, stop).pipe(
          Effect.tapError((e) =>
            (e as { _tag?: string })._tag === "LeaseLost"
              ? refusedHere(e as LeaseLost)
              : Effect.void
          )
        )
      )
      // Moved away or stopping: finish the batches in flight, commit, then let go.
      yield* Effect.addFinalizer(() =>
        Deferred.succeed(stop, undefined).pipe(
          Effect.andThen(Fiber.await(fiber)),
          Effect.timeout(deps.config.shutdownTimeout + 1_000),
          Effect.ignore,
          Effect.andThen(Fiber.interrupt(fiber)),
          Effect.andThen(Metric.update(Metric.withAttributes(running, attributes), 0)),
          Effect.andThen(Effect.sync(() => deps.webhooks?.running(unit.name, false))),
          Effect.andThen(Effect.logInfo(`unit ${unit.name}: stopped here (token ${token})`))
        )
      )
      yield* Metric.update(Metric.withAttributes(running, attributes), 1)
      deps.webhooks?.running(unit.name, true)
      return yield* Fiber.join(fiber)
    })
  )
  return once.pipe(
    // Not interrupted within a lock expiry after a refusal: this runner still holds the
    // shard (the other copy was the stale one), so it claims the unit again.
    Effect.catchTag("LeaseLost", () => Effect.sleep(deps.lockExpiry)),
    Effect.catchCause((cause) =>
      Effect.logError(`unit ${unit.name} failed; starting it again in 5s`, cause).pipe(
        Effect.andThen(Effect.sleep(5_000))
      )
    ),
    Effect.forever
  )
}

/** The unit's source and the lanes of the sinks that take it, fenced by `token`, until `stop`. */
const pipeline = (unit: Unit, deps: UnitDeps, token: number, stop: Deferred.Deferred<void>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { config, metrics, store } = deps
      const source = sourcesOf(config).find((s) => s.name === unit.name)!
      const sinks = config.sinks.filter((sink) =>
        sourcesOfSink(config, sink).some((s) => s.name === unit.name)
      )
      const labelled = Runner.isLabelled(config)
      const opened = yield* Runner.openSource(
        source,
        sinks,
        {},
        { metrics, store, doorbell: deps.webhooks?.doorbellOf(unit.name) }
      )
      const made = yield* Runner.makeSinks(sinks, {
        workosOf: (sink) => Runner.workosContext(sourcesOfSink(config, sink))
      })
      const lanes: Array<Pipeline.LaneSpec> = []
      for (const m of made) {
        if (m.sink === undefined) {
          const sm = metrics.sink(Runner.laneName(m.config.name, labelled ? unit.name : undefined))
          sm.state = "failed"
          sm.error = m.error
          yield* Effect.logError(`sink ${m.config.name} could not start: ${m.error}`)
        } else
          lanes.push(
            Runner.sourceLane(
              Runner.laneSpec(m as Runner.MadeSink & { sink: Sink.Sink }),
              unit.name,
              labelled,
              metrics
            )
          )
      }
      if (deps.console !== undefined) {
        const shown = deps.console
        shown.lanes(unit.name, lanes)
        yield* Effect.addFinalizer(() => Effect.sync(() => shown.lanes(unit.name, undefined)))
      }
      return yield* Pipeline.run({
        lanes,
        source: deps.console?.tap(opened.source) ?? opened.source,
        store,
        token: () => token,
        metrics,
        start: opened.start,
        mode: { _tag: "live", pollInterval: opened.pollInterval },
        stop,
        shutdownTimeout: config.shutdownTimeout,
        ...(source.type === "workos" ? { retention: source.retention } : {})
      })
    })
  ).pipe(
    Effect.mapError((e) =>
      e instanceof Error || (typeof e === "object" && e !== null && "_tag" in e)
        ? e
        : new Error(describeFailure(e))
    )
  )
