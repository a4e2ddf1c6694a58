/**
 * The `cluster` section: run the relay's units (today one, the source with its lanes)
 * on any number of runner processes that share the Postgres state store, with
 * `effect/cluster` (see `cluster/Cluster.ts`).
 *
 * ```yaml
 * state: { postgres: ${DATABASE_URL} }
 * cluster:
 *   address: 10.0.0.5:34431   # where the other runners reach this one
 *   listen: 0.0.0.0:34431     # where it listens (default: address)
 *   shards: 64                # the same on every runner
 *   lockExpiry: 10s           # a dead runner's units move after about this long
 *   lockRefresh: 2s
 *   healthCheck: 2s
 *   assignmentRefresh: 1s
 * ```
 */
import * as Schema from "effect/Schema"
import { parseAddress } from "./Checks.ts"
import { isRecord } from "./Guards.ts"
import type { Problem } from "./Problem.ts"
import { ClusterInterval, ms, NumberInput, num } from "./Values.ts"

const Address = Schema.String.annotate({
  description: 'host:port, such as "10.0.0.5:34431" (port 0 is refused: others must reach it)'
})

export const Cluster = Schema.Struct({
  address: Address,
  listen: Schema.optionalKey(Address),
  shards: Schema.optionalKey(NumberInput({ min: 1, max: 10_000, integer: true })),
  lockExpiry: Schema.optionalKey(
    ClusterInterval.annotate({
      description:
        "How long a runner that stopped answering keeps its units (default 10s): its Postgres session and heartbeats expire after it"
    })
  ),
  lockRefresh: Schema.optionalKey(
    ClusterInterval.annotate({
      description:
        "How often a runner refreshes its shard locks (default 2s; at most lockExpiry/3 is used)"
    })
  ),
  healthCheck: Schema.optionalKey(
    ClusterInterval.annotate({
      description: "How often runners ping each other to find one that died (default 2s)"
    })
  ),
  assignmentRefresh: Schema.optionalKey(
    ClusterInterval.annotate({
      description: "How often a runner reads who is in the cluster (default 1s)"
    })
  )
})
export type ClusterFile = typeof Cluster.Type

export interface HostPort {
  readonly host: string
  readonly port: number
}

/** The cluster's settings: absent, no cluster (one runner holds the lease, the others wait). */
export interface ClusterSettings {
  readonly address: HostPort
  readonly listen: HostPort
  readonly shards: number
  readonly lockExpiry: number
  readonly lockRefresh: number
  readonly healthCheck: number
  readonly assignmentRefresh: number
}

/**
 * Tuned for a relay: a unit of a runner killed with -9 delivers again on another
 * within about lockExpiry + assignmentRefresh (effect's own defaults: 35 s and 3 s).
 */
export const clusterDefaults = {
  shards: 64,
  lockExpiry: 10_000,
  lockRefresh: 2_000,
  healthCheck: 2_000,
  assignmentRefresh: 1_000
} as const

const address = (text: string, path: string, problems: Array<Problem>): HostPort | undefined => {
  const found: Array<Problem> = []
  const parsed = parseAddress(text, found)
  if (parsed === undefined) {
    problems.push({ path, message: `expected host:port such as "10.0.0.5:34431", got "${text}"` })
    return undefined
  }
  if (parsed.port === 0) {
    problems.push({
      path,
      message:
        "port 0 is not allowed: the other runners reach this one at the address it stores in Postgres, and a port the system picks at random cannot be stored before it listens; give a fixed port (e.g. 34431), a different one per runner on one machine"
    })
    return undefined
  }
  return parsed
}

/** The checks the Schema cannot make: Postgres state, addresses, timings that fit together. */
export const checkCluster = (raw: Record<string, unknown>, problems: Array<Problem>) => {
  const section = raw.cluster
  if (section === undefined || section === null) return
  const state = isRecord(raw.state) ? raw.state : {}
  if (state.postgres === undefined)
    problems.push({
      path: "cluster",
      message:
        "cluster mode needs the Postgres state store (state: { postgres: ${DATABASE_URL} }): every runner reads the same checkpoints and shard locks"
    })
  if (!isRecord(section)) return
  if (typeof section.address === "string") address(section.address, "cluster.address", problems)
  if (typeof section.listen === "string") address(section.listen, "cluster.listen", problems)
  const timing = (value: unknown, fallback: number) =>
    typeof value === "string" || typeof value === "number" ? ms(value, fallback) : fallback
  const expiry = timing(section.lockExpiry, clusterDefaults.lockExpiry)
  const refresh = timing(section.lockRefresh, clusterDefaults.lockRefresh)
  if (Number.isFinite(expiry) && Number.isFinite(refresh) && refresh * 2 > expiry)
    problems.push({
      path: "cluster.lockRefresh",
      message: `the lock refresh (${refresh}ms) must be at most half the lock expiry (${expiry}ms), or a busy runner loses its units`
    })
}

export const clusterSettings = (file: ClusterFile): ClusterSettings => {
  const own = address(file.address, "cluster.address", [])!
  return {
    address: own,
    listen: file.listen === undefined ? own : address(file.listen, "cluster.listen", [])!,
    shards: num(file.shards, clusterDefaults.shards),
    lockExpiry: ms(file.lockExpiry, clusterDefaults.lockExpiry),
    lockRefresh: ms(file.lockRefresh, clusterDefaults.lockRefresh),
    healthCheck: ms(file.healthCheck, clusterDefaults.healthCheck),
    assignmentRefresh: ms(file.assignmentRefresh, clusterDefaults.assignmentRefresh)
  }
}
