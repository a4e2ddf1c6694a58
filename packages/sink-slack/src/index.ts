/**
 * @workos-relay/sink-slack: WorkOS events as readable Slack messages.
 */
export * as Blocks from "./Blocks.ts"
export * as Client from "./Client.ts"
export * as Config from "./Config.ts"
export * as Routing from "./Routing.ts"
export * as SlackSink from "./Sink.ts"
export { definition } from "./Sink.ts"
export * as Template from "./Template.ts"
