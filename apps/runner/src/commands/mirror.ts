/** `workos-relay mirror`: the commands of the mirror package, when it is installed. */
import * as Os from "node:os"
import * as Context from "effect/Context"
import { Command } from "effect/cli"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { RelayConfig } from "../config/Schema.ts"
import { formatMillis } from "../internal/Text.ts"
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
  /** Saved only while `token` is the lease's current token (`lease` below); null: unfenced. */
  setSince: (file: string, sink: string, since: string, token: number | null = null) =>
    Effect.flatMap(loadConfig(file), (config) =>
      withStore(config, (store) =>
        store.commit(sink, since, null, token, mirrorSource(config, sink))
      )
    ),
  lease: (file: string) => leaseForBootstrap(file)
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

/**
 * Takes the runner's lease for the scope (renewed meanwhile, given back at its end) so
 * that no runner delivers to the sinks while `mirror bootstrap` fills a mirror and moves
 * its sink's checkpoint: a runner started meanwhile waits as a hot standby. Refused,
 * saying who holds it, while a runner runs. The lease's fencing token.
 */
export const leaseForBootstrap = (file: string) =>
  Effect.gen(function* () {
    const config = yield* loadConfig(file)
    // Loaded here, not at the top: `--help` skips SQL.
    const StateStore = yield* Effect.promise(() => import("../StateStore.ts"))
    const store = yield* Layer.build(StateStore.layer(config.state)).pipe(
      Effect.map((context) => Context.get(context, StateStore.StateStore))
    )
    const holder = `mirror bootstrap on ${Os.hostname()}:${process.pid}`
    const ttl = config.state.leaseTtl
    const lease = yield* store.acquireLease(holder, ttl)
    if (lease === undefined) {
      const current = yield* store.lease()
      const who =
        current === undefined
          ? "another runner"
          : `the runner ${current.holder} (lease token ${current.token}, renewed until ${new Date(current.expiresAt).toISOString()})`
      return yield* new UsageError({
        reason: `${who} holds the lease of the state store ${store.description}: it may be delivering to the mirror, and bootstrap would move the sink's checkpoint under it; stop it (a stopped runner gives the lease back; a killed one's expires within ${formatMillis(ttl)}) and run mirror bootstrap again`
      })
    }
    yield* Effect.addFinalizer(() => store.releaseLease(holder, lease.token).pipe(Effect.ignore))
    // Renewed as a runner renews it; a lost lease shows when the checkpoint is saved (fenced).
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.sleep(ttl / 3).pipe(
          Effect.andThen(store.renewLease(holder, lease.token, ttl)),
          Effect.ignore
        )
      )
    )
    return lease.token
  })

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
