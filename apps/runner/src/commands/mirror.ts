/** `workos-relay mirror`: the commands of the mirror package, when it is installed. */
import { Command } from "effect/cli"
import * as Effect from "effect/Effect"
import type { RelayConfig } from "../config/Schema.ts"
import { installed, subcommandOf } from "./audit.ts"
import { loadConfig, UsageError, withStore } from "./shared.ts"

// Typed loosely on purpose: the mirror package is optional, so its types must not leak here.
export type MirrorCommand = Command.Command<"mirror", any, any, any, never>

export const mirrorMissing =
  "the mirror commands come with the mirror sink: npm install @workos-relay/sink-mirror"

/** What `mirror` is without the mirror package: a command that says what to install. */
export const mirrorFallback: MirrorCommand = Command.make("mirror", {}, () =>
  Effect.fail(new UsageError({ reason: mirrorMissing }))
).pipe(Command.withDescription("Inspect mirror sinks (needs @workos-relay/sink-mirror)"))

/**
 * The runner's checkpoints for `mirror bootstrap`: the state store of the config file.
 * A `since` time saved as the checkpoint is where the sink's lane starts (see
 * `pipeline/Start.ts`), as a configured `since` is saved before the first event.
 */
export const checkpoints = {
  get: (file: string, sink: string) =>
    Effect.flatMap(loadConfig(file), (config) =>
      withStore(config, (store) => store.checkpoint(sink, mirrorSource(config, sink)))
    ).pipe(Effect.map((checkpoint) => checkpoint?.cursor)),
  setSince: (file: string, sink: string, since: string) =>
    Effect.flatMap(loadConfig(file), (config) =>
      // No fencing token: bootstrap runs before the sink's runner does.
      withStore(config, (store) =>
        store.commit(sink, since, null, null, mirrorSource(config, sink))
      )
    )
}

/** The source a mirror reads WorkOS through, and whose checkpoint bootstrap sets: its first. */
const mirrorSource = (config: RelayConfig, sink: string): string => {
  const entry = config.sinks.find((s) => s.name === sink)
  const names = config.sources?.map((s) => s.name) ?? ["default"]
  return names.find((n) => entry?.sources === undefined || entry.sources.includes(n)) ?? "default"
}

/**
 * What `mirror` is on a command line that does not run it (the root's `--help`, other
 * commands): its name and description, without loading the mirror package.
 */
export const mirrorListed = (): MirrorCommand =>
  installed("@workos-relay/sink-mirror/Cli")
    ? Command.make("mirror").pipe(
        Command.withDescription(
          "Inspect, reconcile and bootstrap mirror sinks (WorkOS state as tables)"
        )
      )
    : mirrorFallback

/** `workos-relay mirror status` comes with @workos-relay/sink-mirror; without it, `mirror` says what to install. */
export const loadMirrorCommand = async (): Promise<MirrorCommand> => {
  try {
    const cli = await import("@workos-relay/sink-mirror/Cli")
    // An older mirror package has no makeMirror: its bootstrap only prints the start.
    return typeof cli.makeMirror === "function" ? cli.makeMirror(checkpoints) : cli.mirror
  } catch (error) {
    if ((error as { code?: string }).code !== "ERR_MODULE_NOT_FOUND") throw error
    return mirrorFallback
  }
}

/** Why the command line cannot run: it asks for `mirror ...` and the mirror package is not installed. */
export const missingMirrorPackage = (
  mirror: MirrorCommand,
  args: ReadonlyArray<string>
): string | undefined =>
  mirror === mirrorFallback && subcommandOf(args) === "mirror" ? mirrorMissing : undefined
