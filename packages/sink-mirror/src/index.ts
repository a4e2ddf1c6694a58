/**
 * @workos-relay/sink-mirror: WorkOS state (organizations, users, memberships,
 * directories, directory users and groups, connections) as tables in your own
 * database, kept by events and repaired by reconciling.
 */
export * as Config from "./Config.ts"
export * as Mapping from "./Mapping.ts"
export * as PostgresStore from "./PostgresStore.ts"
export * as Reconcile from "./Reconcile.ts"
export * as Sink from "./Sink.ts"
export { definition } from "./Sink.ts"
export * as SqliteStore from "./SqliteStore.ts"
export * as Store from "./Store.ts"
export * as Tables from "./Tables.ts"
