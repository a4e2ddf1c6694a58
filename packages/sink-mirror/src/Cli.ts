/**
 * `workos-relay mirror status`: the runner mounts the `mirror` command below with one
 * line. Exit codes: 0 ok, 1 a runtime error, 2 bad usage (`UsageError`).
 *
 * The tables are named by `--sqlite PATH` or `--postgres URL` (with `--prefix`,
 * `--schema`), or `--config relay.yaml [--sink NAME]` (the mirror sink entry of a
 * config file); with none, the default SQLite file `./.workos-relay/mirror.db`.
 */
import * as fs from "node:fs"
import * as Path from "node:path"
import { RequestBudget, WorkOS, WorkOSList } from "@workos-relay/core"
import * as Console from "effect/Console"
import { Command, Flag } from "effect/cli"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { FetchHttpClient } from "effect/http"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import { errorExitCode } from "effect/Runtime"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import type * as Scope from "effect/Scope"
import * as Yaml from "yaml"
import * as Config from "./Config.ts"
import * as Lists from "./Lists.ts"
import * as Reconcile from "./Reconcile.ts"
import { openStore } from "./Sink.ts"
import * as SqliteStore from "./SqliteStore.ts"
import { metaKeys } from "./Store.ts"
import { tableNames } from "./Tables.ts"

/** The command line was wrong (a conflicting flag, a bad config entry): exit 2. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly reason: string }> {
  override readonly [errorExitCode] = 2
  override get message(): string {
    return this.reason
  }
}

const storeFlags = {
  sqlite: Flag.String("sqlite").pipe(
    Flag.withDescription(`A SQLite mirror file (default ${SqliteStore.defaultPath})`),
    Flag.optional
  ),
  postgres: Flag.String("postgres").pipe(
    Flag.withDescription("A Postgres URL (postgres://user:password@host:5432/db)"),
    Flag.optional
  ),
  schema: Flag.String("schema").pipe(
    Flag.withDescription("With --postgres: the schema of the tables (default public)"),
    Flag.optional
  ),
  prefix: Flag.String("prefix").pipe(
    Flag.withDescription(`The table name prefix (default ${Config.defaultPrefix})`),
    Flag.optional
  ),
  config: Flag.String("config").pipe(
    Flag.withAlias("c"),
    Flag.withDescription("A relay config file; with --sink, the mirror sink entry to use"),
    Flag.optional
  ),
  sink: Flag.String("sink").pipe(
    Flag.withDescription("The name of the mirror sink in --config (needed when it has several)"),
    Flag.optional
  )
}

interface StoreFlags {
  readonly sqlite: Option.Option<string>
  readonly postgres: Option.Option<string>
  readonly schema: Option.Option<string>
  readonly prefix: Option.Option<string>
  readonly config: Option.Option<string>
  readonly sink: Option.Option<string>
}

/** The runner's own keys of a sink entry; everything else belongs to the sink. */
const runnerKeys = ["type", "module", "events", "organizations", "batch", "retry"]

/** `${VAR}` and `${VAR:-default}` from the environment, as the runner reads its config file. */
const interpolate = (value: unknown, unset: Set<string>): unknown => {
  if (typeof value === "string")
    return value.replace(
      /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
      (all, name: string, fallback: string | undefined) => {
        if (all === "$${") return "${"
        const found = process.env[name]
        if (found !== undefined && found !== "") return found
        if (fallback === undefined) unset.add(name)
        return fallback ?? ""
      }
    )
  if (Array.isArray(value)) return value.map((v) => interpolate(v, unset))
  if (typeof value === "object" && value !== null)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, unset)]))
  return value
}

const decodeOptions = (options: unknown, where: string) => {
  const decoded = Schema.decodeUnknownResult(Schema.toCodecJson(Config.Config))(options, {
    errors: "all",
    onExcessProperty: "error"
  })
  if (Result.isSuccess(decoded)) return Effect.succeed(decoded.success)
  const problems = SchemaIssue.makeFormatterStandardSchemaV1()(decoded.failure.issue).issues.map(
    (issue) => {
      const at = (issue.path ?? []).map((k: any) => `.${String(typeof k === "object" ? k.key : k)}`)
      return `${where}${at.join("")}: ${issue.message === "Expected no excess property" ? "unknown key" : issue.message}`
    }
  )
  return Effect.fail(new UsageError({ reason: [...new Set(problems)].join("; ") }))
}

/** The mirror sink entry `name` of a config file, decoded by this package's schema, with its name. */
export const sinkOfConfigFile = (file: string, name: string | undefined) =>
  Effect.gen(function* () {
    const doc = yield* Effect.try({
      try: () =>
        Yaml.parse(fs.readFileSync(file, "utf8")) as {
          sinks?: Record<string, Record<string, unknown>>
        },
      catch: (e) => new UsageError({ reason: `--config ${file}: ${(e as Error).message}` })
    })
    const sinks = Object.entries(doc?.sinks ?? {}).filter(([, e]) => e?.type === "mirror")
    const names = sinks.map(([n]) => n).join(", ")
    if (sinks.length === 0)
      return yield* new UsageError({
        reason: `--config ${file}: no sink of type mirror under "sinks"`
      })
    if (name === undefined && sinks.length > 1)
      return yield* new UsageError({
        reason: `--config ${file} has several mirror sinks (${names}): choose one with --sink NAME`
      })
    const chosen = name === undefined ? sinks[0] : sinks.find(([n]) => n === name)
    if (chosen === undefined)
      return yield* new UsageError({
        reason: `--config ${file}: no mirror sink named "${name}" (mirror sinks: ${names})`
      })
    const [sinkName, entry] = chosen
    const unset = new Set<string>()
    const options = interpolate(
      Object.fromEntries(Object.entries(entry).filter(([k]) => !runnerKeys.includes(k))),
      unset
    )
    if (unset.size > 0)
      return yield* new UsageError({
        reason: `--config ${file}: sinks.${sinkName}: environment variable ${[...unset].join(", ")} is not set`
      })
    const config = yield* decodeOptions(options, `--config ${file}: sinks.${sinkName}`)
    // Relative paths are relative to the config file's folder, as when the relay runs.
    return { sink: sinkName, config: Config.resolvePaths(config, Path.dirname(Path.resolve(file))) }
  })

/** The mirror sink entry `name` of a config file, decoded by this package's schema. */
export const fromConfigFile = (file: string, name: string | undefined) =>
  Effect.map(sinkOfConfigFile(file, name), (chosen) => chosen.config)

/** The store the flags name. */
export const storeConfig = (flags: StoreFlags): Effect.Effect<Config.Config, UsageError> => {
  const given = (["sqlite", "postgres", "config"] as const).filter((k) => Option.isSome(flags[k]))
  if (given.length > 1)
    return Effect.fail(
      new UsageError({
        reason: `choose one store: ${given.map((k) => `--${k}`).join(" and ")} were given`
      })
    )
  if (Option.isSome(flags.config)) {
    if (Option.isSome(flags.prefix) || Option.isSome(flags.schema))
      return Effect.fail(
        new UsageError({ reason: "--prefix and --schema come from the config file with --config" })
      )
    return fromConfigFile(flags.config.value, Option.getOrUndefined(flags.sink))
  }
  const prefix = Option.isSome(flags.prefix) ? { prefix: flags.prefix.value } : {}
  if (Option.isSome(flags.postgres))
    return decodeOptions(
      {
        store: "postgres",
        url: flags.postgres.value,
        ...(Option.isSome(flags.schema) ? { schema: flags.schema.value } : {}),
        ...prefix
      },
      "--postgres"
    )
  if (Option.isSome(flags.schema))
    return Effect.fail(new UsageError({ reason: "--schema is for --postgres" }))
  return decodeOptions(
    { path: Option.getOrElse(flags.sqlite, () => SqliteStore.defaultPath), ...prefix },
    "--sqlite"
  )
}

/** Aligned columns. */
const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join("  ")
        .trimEnd()
    )
    .join("\n")
}

/** What `mirror status` prints: rows per table, the last event applied, the last reconcile. */
export const statusText = (config: Config.Config) =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* openStore(config)
      const counts = yield* store.counts
      const lastId = yield* store.meta(metaKeys.lastEventId)
      const lastAt = yield* store.meta(metaKeys.lastEventAt)
      const appliedAt = yield* store.meta(metaKeys.lastAppliedAt)
      const reconcile = yield* store.meta(metaKeys.lastReconcile)
      const prefix = config.prefix
      return [
        `mirror ${store.where}`,
        table([
          ["table", "rows", "deleted"],
          ...tableNames.map((t) => [
            `${prefix}${t}`,
            String(counts[t].live),
            String(counts[t].deleted)
          ])
        ]),
        lastId === undefined
          ? "last event applied: none yet"
          : `last event applied: ${lastId} (created ${lastAt}; applied ${appliedAt})`,
        `last reconcile: ${reconcile ?? "never"}`
      ].join("\n")
    })
  )

export const status = Command.make("status", storeFlags, (flags) =>
  Effect.gen(function* () {
    const config = yield* storeConfig(flags)
    // Status reads: it does not create an empty mirror where a path was mistyped.
    if (config.store !== "postgres" && config.path !== ":memory:" && !fs.existsSync(config.path))
      return yield* new UsageError({ reason: `no mirror at ${config.path}` })
    yield* Console.log(yield* statusText(config))
  })
).pipe(
  Command.withDescription(
    "Rows per table (live and deleted), the last event applied and the last reconcile"
  )
)

// ---------------------------------------------------------------------------
// Reconcile and bootstrap

const workosFlags = {
  ...storeFlags,
  baseUrl: Flag.String("base-url").pipe(
    Flag.withDescription(
      "Where the WorkOS API is (default: source.baseUrl of --config, else https://api.workos.com)"
    ),
    Flag.optional
  )
}

/**
 * The WorkOS list calls: the API key from `source.apiKey` of --config, else
 * WORKOS_API_KEY; paced by the key's request budget (`source.maxRequestsPerMinute`).
 */
export const workosLists = (flags: StoreFlags & { readonly baseUrl: Option.Option<string> }) =>
  Effect.gen(function* () {
    let source: Record<string, unknown> = {}
    const file = Option.getOrUndefined(flags.config)
    if (file !== undefined) {
      const doc = yield* Effect.try({
        try: () => Yaml.parse(fs.readFileSync(file, "utf8")) as { source?: unknown },
        catch: (e) => new UsageError({ reason: `--config: ${(e as Error).message}` })
      })
      const unset = new Set<string>()
      source = (interpolate(doc?.source ?? {}, unset) as Record<string, unknown>) ?? {}
    }
    const apiKey =
      typeof source.apiKey === "string" && source.apiKey !== ""
        ? source.apiKey
        : process.env.WORKOS_API_KEY
    if (apiKey === undefined || apiKey === "")
      return yield* new UsageError({
        reason: "no WorkOS API key: set WORKOS_API_KEY (or source.apiKey in --config)"
      })
    const baseUrl = Option.isSome(flags.baseUrl)
      ? flags.baseUrl.value
      : typeof source.baseUrl === "string"
        ? source.baseUrl
        : WorkOS.defaults.baseUrl
    const maxPerMinute =
      typeof source.maxRequestsPerMinute === "number" ? source.maxRequestsPerMinute : undefined
    return yield* WorkOSList.make({
      ...WorkOS.defaults,
      apiKey: Redacted.make(apiKey),
      baseUrl,
      // The key's budget in this process, shared with a relay running in it (`source.maxRequestsPerMinute`).
      budget: RequestBudget.forKey(apiKey, baseUrl, { maxPerMinute })
    }).pipe(Effect.provide(FetchHttpClient.layer))
  })

const tableFlag = Flag.String("table").pipe(
  Flag.withDescription(`One table to reconcile (${Reconcile.reconcilable.join(", ")})`),
  Flag.optional
)

const chooseTables = (table: Option.Option<string>) => {
  if (Option.isNone(table)) return Effect.succeed(Reconcile.reconcilable)
  const name = table.value
  return (Reconcile.reconcilable as ReadonlyArray<string>).includes(name)
    ? Effect.succeed([name as Reconcile.Reconcilable])
    : Effect.fail(
        new UsageError({
          reason: `--table ${name}: not a table reconcile compares (${Reconcile.reconcilable.join(", ")})`
        })
      )
}

/** The findings as a table, with the ids of the first few per kind. */
export const reportText = (report: Reconcile.Report): string => {
  const ids = (xs: ReadonlyArray<string>) =>
    xs.length === 0 ? "" : `${xs.slice(0, 3).join(", ")}${xs.length > 3 ? ", ..." : ""}`
  return table([
    ["table", "missing", "changed", "gone", "deleted-but-listed", "ids"],
    ...Object.entries(report).map(([t, f]) => [
      t,
      String(f.missing.length),
      String(f.changed.length),
      String(f.gone.length),
      String(f.deletedButListed.length),
      ids([...f.missing, ...f.changed, ...f.gone, ...f.deletedButListed])
    ])
  ])
}

/** Lists, compares and repairs; the report. */
export const runReconcile = (
  config: Config.Config,
  lists: WorkOSList.Lists,
  tables: ReadonlyArray<Reconcile.Reconcilable>,
  options: { readonly requireEmpty?: boolean } = {}
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* openStore(config)
      if (options.requireEmpty === true) {
        const counts = yield* store.counts
        const rows = Object.values(counts).reduce((n, c) => n + c.live + c.deleted, 0)
        if (rows > 0)
          return yield* new UsageError({
            reason: `mirror ${store.where} already holds ${rows} row(s): bootstrap fills empty tables only; use mirror reconcile`
          })
      }
      // Before the first request: every change from here on is in an event at or after it.
      const listedAt = new Date()
      const listed = yield* Lists.read(lists, tables)
      const report = yield* Reconcile.reconcile(store, listed, listedAt)
      if (options.requireEmpty === true)
        yield* store.setMeta(metaKeys.bootstrappedAt, listedAt.toISOString())
      return { report, listedAt, where: store.where }
    })
  )

export const reconcile = Command.make("reconcile", { ...workosFlags, table: tableFlag }, (flags) =>
  Effect.gen(function* () {
    const config = yield* storeConfig(flags)
    const tables = yield* chooseTables(flags.table)
    const lists = yield* workosLists(flags)
    const { report, listedAt, where } = yield* runReconcile(config, lists, tables)
    yield* Console.log(
      `reconciled mirror ${where} with WorkOS's lists (read from ${listedAt.toISOString()}):\n${reportText(report)}`
    )
  })
).pipe(
  Command.withDescription(
    "Compare the tables with WorkOS's list APIs; insert what is missing, update what differs, tombstone what WorkOS no longer has; report the drift"
  )
)

/**
 * The runner's checkpoints, handed in by the runner that mounts these commands (this
 * package does not depend on it): the checkpoint of sink `sink` of config file `file`.
 */
export interface Checkpoints {
  /** The sink's checkpoint (an event id or a time); undefined: none yet. */
  readonly get: (file: string, sink: string) => Effect.Effect<string | undefined, Error>
  /**
   * Saves a time as the sink's checkpoint: the sink's events start there (`since`);
   * with `token`, only while that is the lease's current token.
   */
  readonly setSince: (
    file: string,
    sink: string,
    since: string,
    token?: number | null
  ) => Effect.Effect<void, Error>
  /**
   * Takes the runner's lease for the scope, so that no runner delivers meanwhile
   * (refused, saying who holds it, while a runner runs); its fencing token. Absent
   * from an older runner: bootstrap is then unfenced.
   */
  readonly lease?: (file: string) => Effect.Effect<number, Error, Scope.Scope>
}

const forceFlag = Flag.Boolean("force").pipe(
  Flag.withDefault(false),
  Flag.withDescription("Replace the sink's checkpoint when it already has one")
)

/** `mirror bootstrap`: fills empty tables, then starts the sink's events where the lists were read. */
export const makeBootstrap = (checkpoints: Checkpoints | undefined) =>
  Command.make("bootstrap", { ...workosFlags, force: forceFlag }, (flags) =>
    Effect.gen(function* () {
      // The store flags checked as for every command; with --config, the sink's name too.
      const config = yield* storeConfig(flags)
      const file = Option.getOrUndefined(flags.config)
      const chosen =
        file === undefined
          ? undefined
          : yield* sinkOfConfigFile(file, Option.getOrUndefined(flags.sink))
      const lists = yield* workosLists(flags)
      const fenced =
        checkpoints !== undefined && file !== undefined && chosen !== undefined
          ? { checkpoints, file, sink: chosen.sink }
          : undefined
      // While a runner runs, nothing: it may deliver to the mirror as the tables are
      // filled, and the checkpoint would move under it. The lease keeps runners out
      // until bootstrap ends (one starting meanwhile waits as a standby).
      const token =
        fenced?.checkpoints.lease === undefined
          ? null
          : yield* fenced.checkpoints.lease(fenced.file)
      // Refused before any request: a sink with a checkpoint is already on its way.
      if (fenced !== undefined) {
        const existing = yield* fenced.checkpoints.get(fenced.file, fenced.sink)
        if (existing !== undefined && !flags.force)
          return yield* new UsageError({
            reason: `sink ${fenced.sink} already has a checkpoint (${existing}): bootstrap would move it; pass --force to start it where the lists are read`
          })
      }
      const { report, listedAt, where } = yield* runReconcile(
        config,
        lists,
        Reconcile.reconcilable,
        {
          requireEmpty: true
        }
      )
      const since = listedAt.toISOString()
      const filled = `filled mirror ${where} from WorkOS's lists (read from ${since}):\n${reportText(report)}`
      if (fenced !== undefined) {
        yield* fenced.checkpoints.setSince(fenced.file, fenced.sink, since, token)
        return yield* Console.log(
          `${filled}\ncheckpoint of sink ${fenced.sink} set to ${since}: \`run\` delivers its events from there (events before it are older than the rows and change nothing).`
        )
      }
      yield* Console.log(
        `${filled}\nStart the mirror sink's events there, so nothing between is missed: source.start: "${since}" for a sink with no checkpoint yet (events before it are older than the rows and change nothing).`
      )
    }).pipe(Effect.scoped)
  ).pipe(
    Command.withDescription(
      "Fill empty tables from WorkOS's list APIs and start the sink's events (its checkpoint in the runner's state) where the lists were read"
    )
  )

export const bootstrap = makeBootstrap(undefined)

/** The `mirror` commands; the runner hands in its checkpoints so `bootstrap` sets the sink's. */
export const makeMirror = (checkpoints?: Checkpoints) =>
  Command.make("mirror").pipe(
    Command.withDescription(
      "Inspect, reconcile and bootstrap mirror sinks (WorkOS state as tables)"
    ),
    Command.withSubcommands([status, reconcile, makeBootstrap(checkpoints)])
  )

export const mirror = makeMirror()
