/**
 * @workos-relay/testing: local stand-ins of the services workos-relay talks to,
 * on 127.0.0.1, for tests that run real clients without the network.
 */

export * as EventBridgeStandIn from "./EventBridgeStandIn.ts"
export * as Postgres from "./Postgres.ts"
export * as SinkConformance from "./SinkConformance.ts"
export * as SlackStandIn from "./SlackStandIn.ts"
export * as WorkOSStandIn from "./WorkOSStandIn.ts"
