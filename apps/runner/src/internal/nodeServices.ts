/**
 * Node's file system, path, stdio, terminal and child processes for effect/cli: what
 * `@effect/platform-node`'s `NodeServices.layer` provides, built from
 * `@effect/platform-node-shared`, where those modules live. `@effect/platform-node`
 * declares `redis` as a required peer, which npm installs (17 MB) though the runner
 * never talks to Redis; the shared package has no such peer.
 */
import * as NodeChildProcessSpawner from "@effect/platform-node-shared/NodeChildProcessSpawner"
import * as NodeFileSystem from "@effect/platform-node-shared/NodeFileSystem"
import * as NodePath from "@effect/platform-node-shared/NodePath"
import * as NodeStdio from "@effect/platform-node-shared/NodeStdio"
import * as NodeTerminal from "@effect/platform-node-shared/NodeTerminal"
import * as Layer from "effect/Layer"

export const layer = Layer.provideMerge(
  NodeChildProcessSpawner.layer,
  Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeStdio.layer, NodeTerminal.layer)
)
