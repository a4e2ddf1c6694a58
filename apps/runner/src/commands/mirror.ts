/** `workos-relay mirror`: the commands of the mirror package, when it is installed. */
import { Command } from "effect/cli"
import * as Effect from "effect/Effect"
import { subcommandOf } from "./audit.ts"
import { UsageError } from "./shared.ts"

// Typed loosely on purpose: the mirror package is optional, so its types must not leak here.
export type MirrorCommand = Command.Command<"mirror", any, any, any, never>

export const mirrorMissing =
  "the mirror commands come with the mirror sink: npm install @workos-relay/sink-mirror"

/** What `mirror` is without the mirror package: a command that says what to install. */
export const mirrorFallback: MirrorCommand = Command.make("mirror", {}, () =>
  Effect.fail(new UsageError({ reason: mirrorMissing }))
).pipe(Command.withDescription("Inspect mirror sinks (needs @workos-relay/sink-mirror)"))

/** `workos-relay mirror status` comes with @workos-relay/sink-mirror; without it, `mirror` says what to install. */
export const loadMirrorCommand = async (): Promise<MirrorCommand> => {
  try {
    return (await import("@workos-relay/sink-mirror/Cli")).mirror
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
