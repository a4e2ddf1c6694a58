/**
 * @workos-relay/runner: the `workos-relay` command and the modules it is made of.
 */
export * as Cli from "./Cli.ts"
export * as Config from "./Config.ts"
export * as ConsoleSink from "./ConsoleSink.ts"
export * as Observability from "./Observability.ts"
export * as Pipeline from "./Pipeline.ts"
export * as Registry from "./Registry.ts"
export * as Runner from "./Runner.ts"
export * as StateStore from "./StateStore.ts"
