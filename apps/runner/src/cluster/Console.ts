/**
 * The operator console in cluster mode: each runner serves it. The overview shows the
 * cluster (the runners, which unit each runs, each unit's holder and fencing token,
 * and the lag of the units running here) and the lanes of the units running on this
 * runner. Dead letters are in Postgres, so listing, dropping and retrying work on any
 * runner: a letter is retried through its unit's running lane when the unit runs here,
 * else through its sink made for that request, as `dead-letters retry` does.
 */
import type { Sink } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { SqlClient } from "effect/sql"
import type { ClusterSettings } from "../config/Cluster.ts"
import { type RelayConfig, sourcesOfSink } from "../config/Schema.ts"
import type * as Api from "../console/Api.ts"
import * as ConsoleRoutes from "../console/Routes.ts"
import type { Destinations } from "../deadLetters/Retry.ts"
import type { Routes } from "../http/Server.ts"
import { Metrics } from "../Observability.ts"
import * as Pipeline from "../Pipeline.ts"
import * as Runner from "../Runner.ts"
import type { Service as Store } from "../StateStore.ts"
import * as Status from "./Status.ts"

export interface ClusterConsole {
  readonly routes: Routes
  /** The state store (dead letters) and the cluster's tables: Postgres reached. */
  readonly connect: (sql: SqlClient.SqlClient, store: Store) => void
  /** A unit's lanes now run here (undefined: it stopped here). */
  readonly lanes: (unit: string, lanes: ReadonlyArray<Pipeline.LaneSpec> | undefined) => void
  /** The unit's source, offered to the console's tap. */
  readonly tap: (source: Pipeline.Source) => Pipeline.Source
}

export const make = (options: {
  readonly config: RelayConfig
  readonly settings: ClusterSettings
  readonly runner: string
  readonly metrics: Metrics
}): Effect.Effect<ClusterConsole, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { config, settings, runner, metrics } = options
    const made = yield* ConsoleRoutes.make(config.console!, metrics, {
      sinks: config.sinks,
      read: Runner.fetchTypes(
        config.sinks,
        config.source.type === "workos" ? config.source.events : undefined
      )
    })
    const state = made.state
    const labelled = Runner.isLabelled(config)
    const here = new Map<string, ReadonlyArray<Pipeline.LaneSpec>>()
    let sql: SqlClient.SqlClient | undefined
    /** The unit a lane (`sink@source`, or `sink` of the one `default` source) belongs to. */
    const unitOf = (lane: string) => (labelled ? lane.slice(lane.lastIndexOf("@") + 1) : "default")
    const runsHere = (lane: string) => here.has(unitOf(lane))

    const lagOf = (unit: string) => {
      const lanes = [...metrics.sinks].filter(([name]) => unitOf(name) === unit)
      return {
        lagEvents: Math.max(0, ...lanes.map(([, m]) => m.lagEvents)),
        lagMs: Math.max(0, ...lanes.map(([, m]) => m.lagMs))
      }
    }

    const view: Effect.Effect<Api.ClusterOverview, Error> = Effect.suspend(() =>
      sql === undefined
        ? Effect.fail(new Error("the cluster's tables are not reached yet"))
        : Status.readOn(sql)
    ).pipe(
      Effect.map((v) => {
        const live = (address: string) =>
          v.runners.some((r) => r.address === address && Status.alive(r.heartbeatAgeMs, settings))
        return {
          runner,
          lockExpiry: settings.lockExpiry,
          runners: v.runners.map((r) => {
            const gone = !Status.alive(r.heartbeatAgeMs, settings)
            return {
              address: r.address,
              state: gone
                ? ("gone" as const)
                : r.healthy
                  ? ("healthy" as const)
                  : ("unhealthy" as const),
              heartbeatAgeMs: r.heartbeatAgeMs,
              units: gone ? [] : v.units.filter((u) => u.holder === r.address).map((u) => u.name)
            }
          }),
          units: v.units.map((u) => {
            const mine = u.holder === runner && here.has(u.name)
            const lag = mine ? lagOf(u.name) : undefined
            return {
              name: u.name,
              holder: u.holder,
              token: u.token,
              running: live(u.holder),
              lagEvents: lag?.lagEvents ?? null,
              lagMs: lag?.lagMs ?? null
            }
          })
        }
      })
    )

    /** The running lanes here, and a sink made for each letter whose unit runs elsewhere. */
    const destinations = (
      letters: ReadonlyArray<{ readonly sink: string; readonly source?: string | undefined }>
    ): Effect.Effect<Destinations, Error, Scope.Scope> =>
      Effect.gen(function* () {
        const running = [...here.values()].flat()
        const key = (sink: string, source: string | undefined) => `${sink}\u0000${source ?? ""}`
        const hasLane = new Set(
          running.map((lane) => {
            const k = Pipeline.keyOf(lane)
            return key(k.sink, k.source)
          })
        )
        const missing = letters.filter(
          (l) => !hasLane.has(key(l.sink, labelled ? l.source : undefined))
        )
        const configs = config.sinks.filter((s) => missing.some((l) => l.sink === s.name))
        const made = yield* Runner.makeSinks(configs, {
          workosOf: (sink) => Runner.workosContext(sourcesOfSink(config, sink))
        })
        const own = new Metrics()
        const extra = made.flatMap((m) =>
          m.sink === undefined
            ? []
            : [
                ...new Set(missing.filter((l) => l.sink === m.config.name).map((l) => l.source))
              ].map((source) =>
                labelled && source !== undefined
                  ? Runner.sourceLane(
                      Runner.laneSpec(m as Runner.MadeSink & { sink: Sink.Sink }),
                      source,
                      true,
                      own
                    )
                  : Runner.laneSpec(m as Runner.MadeSink & { sink: Sink.Sink })
              )
        )
        return {
          lanes: [...running, ...extra],
          unavailable: new Map(made.map((m) => [m.config.name, m.error ?? m.config.name]))
        }
      })

    state.cluster = { view, runsHere, destinations }
    return {
      routes: made.routes,
      connect: (client, store) => {
        sql = client
        state.store = store
      },
      lanes: (unit, lanes) => {
        if (lanes === undefined) here.delete(unit)
        else here.set(unit, lanes)
        state.lanes = [...here.values()].flat()
      },
      tap: (source) => state.tap.wrap(source)
    }
  })
