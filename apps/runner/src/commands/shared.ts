/**
 * What the commands share: their errors and exit codes, the --config flag, output,
 * logs, and the state store.
 *
 * Exit codes: 0 ok; 1 a runtime failure (WorkOS, the state store, a lost lease, a
 * sink that stopped); 2 bad usage or a bad config file.
 */
import * as Fs from "node:fs"
import * as Context from "effect/Context"
import { CliError, Flag, GlobalFlag } from "effect/cli"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as References from "effect/References"
import type { RelayConfig } from "../config/Schema.ts"
import { logLayer } from "../Logging.ts"
import type * as StateStore from "../StateStore.ts"

/** Bad usage that the flag parser cannot see (a bad date, an unknown sink name): exit code 2. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason
  }
}

/** The run ended with sinks that stopped on errors: exit code 1. */
export class RunFailed extends Data.TaggedError("RunFailed")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason
  }
}

/**
 * The exit code of an error: 2 for bad usage or config (ours, the audit commands',
 * or effect/cli's parse errors; its `UserError` wraps a failure of the command
 * itself), 1 for the rest.
 */
export const exitCode = (error: unknown): number => {
  const tag = (error as { _tag?: unknown } | null)?._tag
  if (tag === "ConfigError" || tag === "UsageError") return 2
  return CliError.isCliError(error) && error._tag !== "UserError" ? 2 : 1
}

export const configFlag = Flag.String("config").pipe(
  Flag.withAlias("c"),
  Flag.withDefault("relay.yaml"),
  Flag.withDescription("The config file (YAML or JSON); default relay.yaml")
)

export const out = (text: string) => Effect.sync(() => process.stdout.write(`${text}\n`))

export const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)))
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd()
    )
    .join("\n")
}

/** Logs as the config file says; `--log-level` on the command line wins over its level. */
export const withLogs =
  (config: RelayConfig) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.gen(function* () {
      const flag = yield* GlobalFlag.LogLevel
      return yield* Effect.provide(
        effect,
        logLayer({ ...config.log, override: Option.getOrUndefined(flag) })
      )
    })

/**
 * For commands whose own lines say what failed (`validate`, `status`): the warnings
 * logged on the way (a retry, a sink that could not check its token) would say it
 * twice. `--log-level` shows them again.
 */
export const errorLogsOnly = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const flag = yield* GlobalFlag.LogLevel
    return yield* Option.isSome(flag)
      ? effect
      : Effect.provideService(effect, References.MinimumLogLevel, "Error")
  })

/**
 * A command someone waits on (`status`, `validate --check-connections`) asks WorkOS
 * twice, 10 s each at most (a firewall that drops packets leaves a connection hanging),
 * where `run` keeps retrying for about two minutes, 30 s an attempt.
 */
export const interactiveClient = { retry: { times: 1 }, timeout: "10 seconds" } as const

export const withStore = <A, E>(
  config: RelayConfig,
  f: (store: StateStore.Service) => Effect.Effect<A, E>
) =>
  Effect.flatMap(
    // Loaded here, not at the top: `--help` and the commands without a store skip SQL.
    Effect.promise(() => import("../StateStore.ts")),
    (StateStore) =>
      Effect.scoped(
        Layer.build(StateStore.layer(config.state)).pipe(
          Effect.flatMap((context) => f(Context.get(context, StateStore.StateStore)))
        )
      )
  )

/**
 * A command's handler from a module loaded only when the command runs: the flags and
 * help text stay apart from what the command does, so `--help` loads none of it (the
 * pipeline, effect/http, SQL, the sinks).
 */
export const lazy =
  <M, I, A, E, R>(
    load: () => Promise<M>,
    handler: (module: M) => (input: I) => Effect.Effect<A, E, R>
  ) =>
  (input: I): Effect.Effect<A, E, R> =>
    Effect.flatMap(Effect.promise(load), (module) => handler(module)(input))

/** The config file, loaded (and its parser) only when a command reads it. */
export const loadConfig = (file: string) =>
  Effect.flatMap(
    Effect.promise(() => import("../config/Load.ts")),
    (Load) => Load.load(file)
  )

/**
 * Why the commands that only read the store have nothing to read: a SQLite store that
 * does not exist yet. They say so rather than create it, or a misspelt path would pass
 * for a fresh install.
 */
export const missingStore = (config: RelayConfig): string | undefined =>
  config.state.type === "sqlite" &&
  config.state.path !== ":memory:" &&
  !Fs.existsSync(config.state.path)
    ? `no SQLite store at ${config.state.path} yet (\`run\` creates it)`
    : undefined
