/**
 * @workos-relay/sink-eventbridge: WorkOS events to Amazon EventBridge.
 */
export * as Client from "./Client.ts"
export * as Config from "./Config.ts"
export * as Entries from "./Entries.ts"
export * as Sink from "./Sink.ts"
export { definition } from "./Sink.ts"
