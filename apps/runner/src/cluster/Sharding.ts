/**
 * The `effect/cluster` runner of this process: a socket runner at `cluster.address`,
 * its shard locks and runner list in the Postgres state store (`cluster_*` tables).
 *
 * Put together as `@effect/platform-node`'s `NodeClusterSocket.layer` does, but with
 * `ShardingConfig.layer` instead of `layerFromEnv`: that one reads `HOST`, `PORT`
 * and others from the environment, which belong to other programs here.
 */

import * as NodeClusterSocket from "@effect/platform-node-shared/NodeClusterSocket"
import * as NodeCrypto from "@effect/platform-node-shared/NodeCrypto"
import { RunnerAddress } from "effect/cluster/RunnerAddress"
import * as RunnerHealth from "effect/cluster/RunnerHealth"
import * as Runners from "effect/cluster/Runners"
import * as ShardingConfig from "effect/cluster/ShardingConfig"
import * as SocketRunner from "effect/cluster/SocketRunner"
import * as SqlMessageStorage from "effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "effect/cluster/SqlRunnerStorage"
import * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as RpcSerialization from "effect/rpc/RpcSerialization"
import type { ClusterSettings } from "../config/Cluster.ts"

/** The `ShardingConfig` of a config's `cluster` section. */
export const shardingConfig = (
  settings: ClusterSettings
): Partial<ShardingConfig.ShardingConfig["Service"]> => ({
  runnerAddress: Option.some(RunnerAddress.make(settings.address)),
  runnerListenAddress: Option.some(RunnerAddress.make(settings.listen)),
  shardsPerGroup: settings.shards,
  shardLockExpiration: Duration.millis(settings.lockExpiry),
  shardLockRefreshInterval: Duration.millis(settings.lockRefresh),
  runnerHealthCheckInterval: Duration.millis(settings.healthCheck),
  refreshAssignmentsInterval: Duration.millis(settings.assignmentRefresh)
})

/** `Sharding` for this process, over the `SqlClient` it is given. */
export const layer = (settings: ClusterSettings) => {
  const health = RunnerHealth.layerPing.pipe(
    Layer.provide(Runners.layerRpc),
    Layer.provide(NodeClusterSocket.layerClientProtocol)
  )
  return SocketRunner.layer.pipe(
    Layer.provide([NodeClusterSocket.layerSocketServer, NodeClusterSocket.layerClientProtocol]),
    Layer.provide(health),
    Layer.provideMerge(SqlMessageStorage.layer.pipe(Layer.provide(NodeCrypto.layerDigest))),
    Layer.provide(Layer.orDie(SqlRunnerStorage.layer)),
    Layer.provide(ShardingConfig.layer(shardingConfig(settings))),
    Layer.provide(RpcSerialization.layerSchemaBinary())
  )
}
