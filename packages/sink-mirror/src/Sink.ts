/**
 * The `mirror` sink: each batch of events becomes row versions (`Mapping.fold`),
 * merged into the tables in one transaction. Re-delivered, repeated or out-of-order
 * events end in the same tables as each event applied once in order.
 *
 * The sink is typed: an event whose payload breaks the spec is dead-lettered by the
 * runner rather than written into a table it may not fit.
 */
import { type Event, Sink } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Config from "./Config.ts"
import * as Mapping from "./Mapping.ts"
import * as PostgresStore from "./PostgresStore.ts"
import * as Scheduled from "./Scheduled.ts"
import * as SqliteStore from "./SqliteStore.ts"
import { type SchemaTooNew, type Shape, Store, type StoreError } from "./Store.ts"

/** Opens (creating and migrating when needed) the store a config names; closed with the scope. */
export const openStore = (
  config: Config.Config
): Effect.Effect<Shape, StoreError | SchemaTooNew, Scope.Scope> =>
  config.store === "postgres"
    ? PostgresStore.makeFromUrl({ url: config.url, schema: config.schema, prefix: config.prefix })
    : SqliteStore.make({
        path: config.path,
        prefix: config.prefix,
        lockWait: Config.lockWaitMs(config)
      })

/** The `Store` service for a config. */
export const layer = (config: Config.Config): Layer.Layer<Store, StoreError | SchemaTooNew> =>
  Layer.effect(Store, openStore(config))

/** Applies a batch: one transaction; an event that cannot be applied (`Mapping.problem`) is rejected, the rest applied. */
export const deliverTo =
  (store: Shape) =>
  (batch: ReadonlyArray<Event.Any>): Effect.Effect<ReadonlyArray<Sink.Outcome>, StoreError> => {
    const problems = batch.map(Mapping.problem)
    const applicable = problems.every((p) => p === undefined)
      ? batch
      : batch.filter((_, i) => problems[i] === undefined)
    const last = batch.at(-1)
    const lastAt = last === undefined ? undefined : (last as { created_at?: unknown }).created_at
    return store
      .apply(
        Mapping.fold(applicable),
        last === undefined ? undefined : { id: last.id, at: String(lastAt ?? "") }
      )
      .pipe(Effect.as(problems.map((p) => (p === undefined ? Sink.delivered : Sink.rejected(p)))))
  }

export const definition = Sink.define({
  type: "mirror",
  events: Mapping.eventTypes,
  config: Config.Config,
  make: (config, context) =>
    Effect.gen(function* () {
      const store = yield* openStore(Config.resolvePaths(config, context.directory)).pipe(
        Effect.mapError((e) => new Sink.SinkFatal({ reason: e.message }))
      )
      // `reconcile.every`: rounds while `run` runs (not when only checked, nor without a WorkOS source).
      const every = config.reconcile?.every
      if (every !== undefined && context.workos !== undefined && context.checkOnly !== true)
        yield* Effect.forkScoped(Scheduled.run(context.name, store, context.workos, every))
      return {
        batch: { maxEvents: 2000, maxWait: "1 second" },
        deliver: (batch: ReadonlyArray<Event.Any>) =>
          deliverTo(store)(batch).pipe(
            Effect.mapError((e) => new Sink.SinkUnavailable({ reason: e.message }))
          ),
        // Counts the rows: the tables are there and answer.
        check: store.counts.pipe(
          Effect.asVoid,
          Effect.mapError((e) => new Sink.SinkUnavailable({ reason: e.message }))
        )
      }
    })
})
