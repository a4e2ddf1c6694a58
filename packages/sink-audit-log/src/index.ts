/**
 * @workos-relay/sink-audit-log: every WorkOS event exactly once in a tamper-evident,
 * queryable audit log (SQLite by default, Postgres, or JSONL files).
 */
export * as Chain from "./Chain.ts"
export * as Config from "./Config.ts"
export * as JsonlStore from "./JsonlStore.ts"
export * as PostgresStore from "./PostgresStore.ts"
export * as Record from "./Record.ts"
export * as Sink from "./Sink.ts"
export { definition } from "./Sink.ts"
export * as SqliteStore from "./SqliteStore.ts"
export * as Store from "./Store.ts"
