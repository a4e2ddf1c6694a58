/**
 * @workos-relay/core: WorkOS events, exactly typed and decoded fast.
 */
export * as CatchUp from "./CatchUp.ts"
export * as Event from "./Event.ts"
export * as EventList from "./EventList.ts"
export * as EventPattern from "./EventPattern.ts"
export * as EventStream from "./EventStream.ts"
export * as RequestBudget from "./RequestBudget.ts"
export * as Sink from "./Sink.ts"
export * as Text from "./Text.ts"
export * as Webhook from "./Webhook.ts"
export * as WorkOS from "./WorkOS.ts"
export * as WorkOSList from "./WorkOSList.ts"
