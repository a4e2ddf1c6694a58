/**
 * `run` in cluster mode (`cluster:` in config): this process joins the cluster of
 * runners on the Postgres state store and runs the units whose shards it holds, each
 * as an `effect/cluster` singleton (`Unit.ts`). When a runner dies its shard locks
 * expire and its units start on another; a runner that stops (SIGTERM) finishes its
 * in-flight batches, then unregisters, and the others take its units at their next
 * assignment refresh.
 */

import * as Context from "effect/Context"
import * as Singleton from "effect/cluster/Singleton"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { SqlClient } from "effect/sql"
import { type RelayConfig, sourcesOfSink } from "../config/Schema.ts"
import * as ConsoleRoutes from "../console/Routes.ts"
import * as HttpServer from "../http/Server.ts"
import * as Observability from "../Observability.ts"
import { Metrics } from "../Observability.ts"
import type { RunOptions, RunReport } from "../Runner.ts"
import * as Runner from "../Runner.ts"
import { StoreError } from "../StateStore.ts"
import * as Patience from "../state/Patience.ts"
import { dbOn, serverOf, storeOn } from "../state/Postgres.ts"
import { claimLease } from "../state/Sql.ts"
import * as ClusterConsole from "./Console.ts"
import * as Sharding from "./Sharding.ts"
import * as Unit from "./Unit.ts"
import * as Webhooks from "./Webhooks.ts"

/** Runs this process's share of the units until `options.stop`, then hands them over. */
export const run = (config: RelayConfig, options: RunOptions): Effect.Effect<RunReport, Error> =>
  Effect.scoped(
    Effect.gen(function* () {
      const started = Date.now()
      const settings = config.cluster!
      if (config.state.type !== "postgres")
        return yield* Effect.fail(new Error("cluster mode needs the Postgres state store"))
      const metrics = options.metrics ?? new Metrics()
      const labelled = Runner.isLabelled(config)
      for (const sink of config.sinks)
        for (const source of labelled ? sourcesOfSink(config, sink) : [undefined])
          metrics.sink(
            Runner.laneName(sink.name, source?.name),
            source === undefined ? undefined : { sink: sink.name, source: source.name }
          )
      const runner = `${settings.address.host}:${settings.address.port}`
      // The doorbell answers as soon as the server listens; it keeps deliveries once Postgres is reached.
      const webhooks =
        config.webhooks === undefined || config.http === undefined
          ? undefined
          : yield* Webhooks.make({ config, runner, metrics })
      const operatorConsole =
        config.console === undefined || config.http === undefined
          ? undefined
          : yield* ClusterConsole.make({ config, settings, runner, metrics })
      if (config.http !== undefined) {
        const paths = [
          ...Observability.paths,
          ...(webhooks === undefined ? [] : [webhooks.routePath]),
          ...(operatorConsole === undefined ? [] : ConsoleRoutes.paths)
        ]
        const port = yield* HttpServer.serve(
          Layer.mergeAll(
            Observability.routes(metrics),
            webhooks === undefined ? Layer.empty : webhooks.routes,
            operatorConsole === undefined ? Layer.empty : operatorConsole.routes,
            HttpServer.notFound(paths)
          ),
          config.http
        )
        yield* Effect.logInfo(
          `health and metrics on http://${config.http.host}:${port} (${paths.join(" ")})`
        )
        options.onListening?.(port)
      }
      const storeName = `Postgres state store at ${serverOf(config.state.url)}`
      const { PgClient } = yield* Effect.promise(() => import("@effect/sql-pg"))
      // The cluster reserves one connection for its shard locks, the doorbell one to
      // listen on; the units share the rest.
      const pg = yield* Layer.build(
        PgClient.layer({ url: config.state.url, maxConnections: webhooks === undefined ? 8 : 9 })
      ).pipe(
        Effect.mapError(
          (cause) => new StoreError({ store: storeName, operation: "connect", cause })
        )
      )
      const sql = Context.get(pg, SqlClient.SqlClient)
      // Webhooks and dead letters are not a unit's: an unfenced store for them.
      if (webhooks !== undefined || operatorConsole !== undefined) {
        const store = yield* storeOn(sql, storeName, Patience.openForRun, Patience.untilDone)
        if (webhooks !== undefined)
          yield* webhooks.start({ pg: Context.get(pg, PgClient.PgClient), store })
        operatorConsole?.connect(sql, store)
      }
      const units = Unit.unitsOf(config)
      const singletons = yield* Effect.forEach(units, (unit) =>
        storeOn(
          sql,
          storeName,
          Patience.openForRun,
          Patience.untilDone,
          Unit.leaseName(unit),
          settings.lockExpiry
        ).pipe(
          Effect.map((store) =>
            Singleton.make(
              Unit.singletonName(unit),
              Unit.run(unit, {
                config,
                runner,
                store,
                claim: Patience.patiently(Patience.untilDone)(
                  claimLease(dbOn(sql, storeName), Unit.leaseName(unit), runner)
                ),
                metrics,
                lockExpiry: settings.lockExpiry,
                webhooks,
                console: operatorConsole
              })
            )
          )
        )
      )
      yield* Effect.logInfo(
        `joining the cluster as ${runner} (${units.length} unit(s): ${units.map((u) => u.name).join(", ")}; lock expiry ${settings.lockExpiry}ms)`
      )
      metrics.leaseHeld = true
      // Closed last-in first-out with this scope: the units stop (finishing their
      // batches), then the runner unregisters and releases its shard locks.
      yield* Layer.build(
        Layer.mergeAll(Layer.empty, ...singletons).pipe(
          Layer.provideMerge(Sharding.layer(settings)),
          Layer.provide(Layer.succeedContext(pg))
        )
      ).pipe(Effect.mapError((e) => clusterError(e, settings)))
      // Ready once a member (/readyz): a runner with no unit is a ready spare.
      metrics.ready = true
      yield* Deferred.await(options.stop)
      metrics.ready = false
      yield* Effect.logInfo("stopping: handing this runner's units over")
      return { lanes: [], metrics, elapsedMs: Date.now() - started }
    })
  )

/** Why the cluster could not start, for a person (a socket error says only "Open"). */
const clusterError = (e: unknown, settings: NonNullable<RelayConfig["cluster"]>): Error => {
  const cause = (e as { cause?: unknown } | null)?.cause
  const detail = cause instanceof Error ? cause.message : String((e as Error)?.message ?? e)
  const listen = `${settings.listen.host}:${settings.listen.port}`
  return (e as { _tag?: string } | null)?._tag === "SocketServerError"
    ? new Error(
        `cluster: cannot listen on ${listen} (cluster.listen, or cluster.address): ${detail}; each runner on one machine needs its own port`
      )
    : new Error(`cluster: ${detail}`)
}
