/**
 * What `status` says of a cluster: its runners (from effect/cluster's `cluster_runners`
 * table), and which runner runs each unit (the holder of the unit's fencing token).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import { SqlClient } from "effect/sql"
import type { ClusterSettings } from "../config/Cluster.ts"
import { formatMillis } from "../internal/Text.ts"

export interface ClusterView {
  readonly runners: ReadonlyArray<{
    readonly address: string
    readonly healthy: boolean
    readonly heartbeatAgeMs: number
  }>
  readonly units: ReadonlyArray<{
    readonly name: string
    readonly holder: string
    readonly token: number
  }>
}

/** Reads the cluster's runners and units; a cluster no runner has joined yet has none. */
export const read = (url: Redacted.Redacted<string>): Effect.Effect<ClusterView, Error> =>
  Effect.scoped(
    Effect.gen(function* () {
      const { PgClient } = yield* Effect.promise(() => import("@effect/sql-pg"))
      const context = yield* Layer.build(PgClient.layer({ url, maxConnections: 1 }))
      return yield* readOn(Context.get(context, SqlClient.SqlClient))
    })
  ).pipe(
    Effect.mapError(
      (e) => new Error(`could not read the cluster: ${String((e as Error).message ?? e)}`)
    )
  )

/** `read` on a client already open (a runner's console). */
export const readOn = (sql: SqlClient.SqlClient): Effect.Effect<ClusterView, Error> =>
  Effect.gen(function* () {
    const tables = yield* sql.unsafe<{ name: string }>(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_name IN ('cluster_runners', 'relay_lease')"
    )
    const has = (name: string) => tables.some((t) => t.name === name)
    const runners = has("cluster_runners")
      ? yield* sql.unsafe<{ address: string; healthy: boolean; age: number }>(
          "SELECT address, healthy, EXTRACT(EPOCH FROM (NOW() - last_heartbeat)) * 1000 AS age FROM cluster_runners ORDER BY address"
        )
      : []
    const units = has("relay_lease")
      ? yield* sql.unsafe<{ name: string; holder: string; token: number }>(
          "SELECT name, holder, token FROM relay_lease WHERE name LIKE 'unit:%' ORDER BY name"
        )
      : []
    return {
      runners: runners.map((r) => ({
        address: String(r.address),
        healthy: Boolean(r.healthy),
        heartbeatAgeMs: Math.max(0, Math.round(Number(r.age)))
      })),
      units: units.map((u) => ({
        name: String(u.name).slice("unit:".length),
        holder: String(u.holder),
        token: Number(u.token)
      }))
    }
  }).pipe(
    Effect.mapError(
      (e) => new Error(`could not read the cluster: ${String((e as Error).message ?? e)}`)
    )
  )

/** A runner is in the cluster while its heartbeat is younger than the lock expiry. */
export const alive = (heartbeatAgeMs: number, settings: ClusterSettings) =>
  heartbeatAgeMs < settings.lockExpiry

/** `status`'s lines of a cluster; `lag` is each unit's lag as the sink table shows it (its worst sink). */
export const lines = (
  view: ClusterView,
  settings: ClusterSettings,
  lagOf: (unit: string) => string
): ReadonlyArray<string> => {
  const live = view.runners.filter((r) => alive(r.heartbeatAgeMs, settings))
  const runs = (address: string) =>
    view.units.filter((u) => u.holder === address).map((u) => u.name)
  return [
    `cluster: ${live.length} runner(s) (lock expiry ${formatMillis(settings.lockExpiry)})`,
    ...view.runners.map((r) => {
      const units = runs(r.address)
      const state = !alive(r.heartbeatAgeMs, settings)
        ? "gone"
        : r.healthy
          ? "healthy"
          : "unhealthy"
      return `  ${r.address}  ${state}, heartbeat ${formatMillis(r.heartbeatAgeMs)} ago, runs: ${units.length === 0 || state === "gone" ? "-" : units.join(", ")}`
    }),
    ...(view.units.length === 0
      ? ["units: none started yet (no runner has joined)"]
      : view.units.map((u) => {
          const on = live.some((r) => r.address === u.holder)
          return on
            ? `unit ${u.name}: on ${u.holder} (fencing token ${u.token}), lag ${lagOf(u.name)}`
            : `unit ${u.name}: not running (last on ${u.holder}, token ${u.token}; it starts on a runner within the lock expiry), lag ${lagOf(u.name)}`
        }))
  ]
}
