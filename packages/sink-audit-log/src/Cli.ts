/**
 * `workos-relay audit verify` and `workos-relay audit query`: the runner mounts the
 * `audit` command below with one line. Exit codes (through the runner's bin, or
 * `Runtime.errorExitCode` when run alone): 0 ok, 1 a broken chain or a runtime
 * error, 2 bad usage (`UsageError`).
 *
 * The store is named by `--sqlite PATH`, `--postgres URL`, `--jsonl DIR`, or
 * `--config relay.yaml --sink NAME` (the sink entry of a config file); with none,
 * the default SQLite file `./.workos-relay/audit.db`.
 */
import * as fs from "node:fs"
import * as Path from "node:path"
import * as Console from "effect/Console"
import { CliError, Command, Flag } from "effect/cli"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import { errorExitCode } from "effect/Runtime"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Yaml from "yaml"
import type * as Chain from "./Chain.ts"
import * as Config from "./Config.ts"
import * as Digest from "./Digest.ts"
import * as DigestVerify from "./DigestVerify.ts"
import {
  describeReport,
  mustExist,
  parseQuery,
  queryStore,
  UsageError,
  verifyStore
} from "./Inspect.ts"
import type { StoredRecord } from "./Record.ts"
import { openStore } from "./Sink.ts"
import * as SqliteStore from "./SqliteStore.ts"
import { defaultLimit } from "./Store.ts"

export { UsageError }

/** `verify` found the chain broken: exit 1. */
export class VerifyFailed extends Data.TaggedError("VerifyFailed")<{
  readonly where: string
  readonly problem: Chain.Problem
}> {
  override readonly [errorExitCode] = 1
  override get message(): string {
    return `audit log ${this.where} failed verification: ${this.problem.message}`
  }
}

/**
 * The exit code of a failure of these commands: 2 for bad usage (ours, or effect/cli's
 * parse errors; its `UserError` wraps a failure of the command itself), 1 for the rest.
 */
export const exitCode = (error: unknown): number =>
  error instanceof UsageError || (CliError.isCliError(error) && error._tag !== "UserError") ? 2 : 1

// ---------------------------------------------------------------------------
// Which store

const storeFlags = {
  sqlite: Flag.String("sqlite").pipe(
    Flag.withDescription(`A SQLite audit log file (default ${SqliteStore.defaultPath})`),
    Flag.optional
  ),
  postgres: Flag.Redacted("postgres").pipe(
    Flag.withDescription("A Postgres URL (postgres://user:password@host:5432/db)"),
    Flag.optional
  ),
  jsonl: Flag.String("jsonl").pipe(Flag.withDescription("A JSONL audit log folder"), Flag.optional),
  config: Flag.String("config").pipe(
    Flag.withAlias("c"),
    Flag.withDescription("A relay config file; with --sink, the audit-log sink entry to use"),
    Flag.optional
  ),
  sink: Flag.String("sink").pipe(
    Flag.withDescription("The name of the audit-log sink in --config (needed when it has several)"),
    Flag.optional
  )
}

interface StoreFlags {
  readonly sqlite: Option.Option<string>
  readonly postgres: Option.Option<Redacted.Redacted<string>>
  readonly jsonl: Option.Option<string>
  readonly config: Option.Option<string>
  readonly sink: Option.Option<string>
}

/** The runner's own keys of a sink entry; everything else belongs to the sink. */
const runnerKeys = ["type", "module", "events", "organizations", "batch", "retry"]

/**
 * `${VAR}` and `${VAR:-default}` from the environment, as the runner reads its config
 * file; the names of variables that are not set (and have no default) go to `unset`.
 */
const interpolate = (value: unknown, env: NodeJS.ProcessEnv, unset: Set<string>): unknown => {
  if (typeof value === "string") {
    return value.replace(
      /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
      (all, name: string, fallback: string | undefined) => {
        if (all === "$${") return "${"
        const found = env[name]
        if (found !== undefined && found !== "") return found
        if (fallback === undefined) unset.add(name)
        return fallback ?? ""
      }
    )
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env, unset))
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, interpolate(v, env, unset)])
    )
  }
  return value
}

/** The audit-log sink entry `name` of a config file, decoded by this package's schema. */
export const fromConfigFile = (
  file: string,
  name: string | undefined
): Effect.Effect<Config.Config, UsageError> =>
  Effect.gen(function* () {
    const text = yield* Effect.try({
      try: () => fs.readFileSync(file, "utf8"),
      catch: (e) =>
        new UsageError({ reason: `--config ${file}: cannot read it: ${(e as Error).message}` })
    })
    const doc = yield* Effect.try({
      try: () => Yaml.parse(text) as { sinks?: Record<string, Record<string, unknown>> },
      catch: (e) =>
        new UsageError({ reason: `--config ${file}: not valid YAML: ${(e as Error).message}` })
    })
    const sinks = Object.entries(doc?.sinks ?? {}).filter(
      ([, entry]) => entry?.type === "audit-log"
    )
    if (sinks.length === 0) {
      return yield* new UsageError({
        reason: `--config ${file}: no sink of type audit-log under "sinks"`
      })
    }
    let chosen: [string, Record<string, unknown>] | undefined
    if (name === undefined) {
      if (sinks.length > 1) {
        return yield* new UsageError({
          reason: `--config ${file} has several audit-log sinks (${sinks.map(([n]) => n).join(", ")}): choose one with --sink NAME`
        })
      }
      chosen = sinks[0]
    } else {
      chosen = sinks.find(([n]) => n === name)
      if (chosen === undefined) {
        return yield* new UsageError({
          reason: `--config ${file}: no audit-log sink named "${name}" (audit-log sinks: ${sinks.map(([n]) => n).join(", ")})`
        })
      }
    }
    const [sinkName, entry] = chosen!
    const needed = new Set<string>()
    const options = interpolate(
      Object.fromEntries(Object.entries(entry).filter(([k]) => !runnerKeys.includes(k))),
      process.env,
      needed
    )
    if (needed.size > 0) {
      return yield* new UsageError({
        reason: `--config ${file}: sinks.${sinkName}: environment variable ${[...needed].join(", ")} is not set`
      })
    }
    const decoded = Schema.decodeUnknownResult(Schema.toCodecJson(Config.Config))(options, {
      errors: "all",
      onExcessProperty: "error"
    })
    if (Result.isFailure(decoded)) {
      const problems = SchemaIssue.makeFormatterStandardSchemaV1()(
        decoded.failure.issue
      ).issues.map((issue) => {
        const at = (issue.path ?? []).map(
          (k: any) => `.${String(typeof k === "object" ? k.key : k)}`
        )
        return `sinks.${sinkName}${at.join("")}: ${issue.message === "Expected no excess property" ? "unknown key" : issue.message}`
      })
      return yield* new UsageError({
        reason: `--config ${file}: ${[...new Set(problems)].join("; ")} (workos-relay validate -c ${file} says more)`
      })
    }
    // Relative paths are relative to the config file's folder, as when the relay runs.
    return Config.resolvePaths(decoded.success, Path.dirname(Path.resolve(file)))
  })

/** The store the flags name. */
export const storeConfig = (flags: StoreFlags): Effect.Effect<Config.Config, UsageError> =>
  Effect.gen(function* () {
    const given = (["sqlite", "postgres", "jsonl", "config"] as const).filter((k) =>
      Option.isSome(flags[k] as Option.Option<unknown>)
    )
    if (given.length > 1) {
      return yield* new UsageError({
        reason: `choose one store: ${given.map((k) => `--${k}`).join(" and ")} were both given`
      })
    }
    if (Option.isSome(flags.sink) && Option.isNone(flags.config)) {
      return yield* new UsageError({
        reason: "--sink names a sink of a config file: give --config too"
      })
    }
    if (Option.isSome(flags.postgres)) return { store: "postgres", url: flags.postgres.value }
    if (Option.isSome(flags.jsonl))
      return { store: "jsonl", directory: flags.jsonl.value, gzip: false }
    if (Option.isSome(flags.config))
      return yield* fromConfigFile(flags.config.value, Option.getOrUndefined(flags.sink))
    return { store: "sqlite", path: Option.getOrElse(flags.sqlite, () => SqliteStore.defaultPath) }
  })

// ---------------------------------------------------------------------------
// verify

export const verify = Command.make(
  "verify",
  {
    ...storeFlags,
    format: Flag.Literals("format", ["text", "json"]).pipe(
      Flag.withDescription("text (default) or json"),
      Flag.withDefault("text" as const)
    ),
    digests: Flag.String("digests").pipe(
      Flag.withDescription(
        "A folder of signed digests: also prove that every record they cover is still there, unchanged, in order"
      ),
      Flag.optional
    ),
    publicKey: Flag.String("public-key").pipe(
      Flag.withDescription(
        "The PEM file of the public key the digests are signed with (with --digests)"
      ),
      Flag.optional
    )
  },
  (flags) =>
    Effect.gen(function* () {
      const config = yield* storeConfig(flags)
      if (Option.isSome(flags.digests) !== Option.isSome(flags.publicKey)) {
        return yield* new UsageError({
          reason: "--digests and --public-key go together: the digests are checked with the key"
        })
      }
      if (Option.isSome(flags.digests) && Option.isSome(flags.publicKey)) {
        yield* mustExist(config)
        return yield* verifyWithDigests(
          config,
          flags.digests.value,
          flags.publicKey.value,
          flags.format
        )
      }
      const { where, report } = yield* verifyStore(config)
      if (flags.format === "json") {
        yield* Console.log(JSON.stringify({ where, ok: report.problem === null, ...report }))
      } else if (report.problem === null) {
        yield* Console.log(describeReport(where, report))
      } else {
        yield* Console.error(describeReport(where, report))
      }
      if (report.problem !== null)
        return yield* new VerifyFailed({ where, problem: report.problem })
    })
).pipe(
  Command.withDescription(
    "Walk the hash chain of an audit log and report the first modified, deleted, inserted or moved record"
  )
)

/** `verify --digests DIR --public-key FILE`: the chain walk, then every digest checked against the store. */
const verifyWithDigests = (
  config: Config.Config,
  directory: string,
  publicKeyFile: string,
  format: "text" | "json"
) =>
  Effect.gen(function* () {
    const key = yield* Effect.try({
      try: () => Digest.publicKeyFrom(fs.readFileSync(publicKeyFile, "utf8")),
      catch: (e) =>
        new UsageError({ reason: `--public-key ${publicKeyFile}: ${(e as Error).message}` })
    })
    const digests = yield* Effect.try({
      try: () => Digest.readAll(directory),
      catch: (e) => new UsageError({ reason: `--digests ${directory}: ${(e as Error).message}` })
    })
    yield* Effect.scoped(
      Effect.gen(function* () {
        const store = yield* openStore(config, { readOnly: true })
        const report = yield* DigestVerify.verify(store, digests, key)
        const ok = report.problems.length === 0
        if (format === "json") {
          yield* Console.log(JSON.stringify({ where: store.where, ok, ...report }))
        } else if (ok) {
          yield* Console.log(
            `audit log ${store.where}: OK: ${report.chain.records} record(s) verified; ${report.digests} signed digest(s) hold: every record they cover is there, unchanged, in order`
          )
        } else {
          for (const p of report.problems) {
            yield* Console.error(`audit log ${store.where}: FAILED (${p.kind}): ${p.message}`)
          }
        }
        if (!ok) {
          const first = report.problems[0]!
          return yield* new VerifyFailed({
            where: store.where,
            problem: { kind: "deleted", seq: null, id: null, message: first.message }
          })
        }
      })
    )
  })

// ---------------------------------------------------------------------------
// keys

export const keygen = Command.make(
  "keygen",
  {
    privateKeyFile: Flag.String("private-key-file").pipe(
      Flag.withDescription("Where to write the new private key (PEM, mode 0600; never overwritten)")
    )
  },
  (flags) =>
    Effect.gen(function* () {
      const pair = Digest.generateKeyPair()
      yield* Effect.try({
        try: () =>
          fs.writeFileSync(flags.privateKeyFile, pair.privateKey, { mode: 0o600, flag: "wx" }),
        catch: (e) =>
          new UsageError({
            reason: `--private-key-file ${flags.privateKeyFile}: ${(e as Error).message}`
          })
      })
      yield* Console.log(pair.publicKey.trimEnd())
    })
).pipe(
  Command.withDescription(
    "Make an Ed25519 key pair for signed digests: writes the private key, prints the public key"
  )
)

export const publicKey = Command.make(
  "public-key",
  {
    privateKeyFile: Flag.String("private-key-file").pipe(
      Flag.withDescription("The private key (PEM) the sink signs digests with")
    )
  },
  (flags) =>
    Effect.gen(function* () {
      const pem = yield* Effect.try({
        try: () =>
          Digest.publicKeyPem(Digest.privateKeyFrom(fs.readFileSync(flags.privateKeyFile, "utf8"))),
        catch: (e) =>
          new UsageError({
            reason: `--private-key-file ${flags.privateKeyFile}: ${(e as Error).message}`
          })
      })
      yield* Console.log(pem.trimEnd())
    })
).pipe(
  Command.withDescription("Print the public key of a digest signing key (for verify --public-key)")
)

// ---------------------------------------------------------------------------
// query

export { parseTime } from "./Inspect.ts"

const csvCell = (v: string): string => (/[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v)

const actorText = (r: StoredRecord): string =>
  r.actor === null ? "" : [r.actor.name, r.actor.id].filter((x) => x !== null).join(" ")

const targetsText = (r: StoredRecord): string => r.targets.map((t) => `${t.type}:${t.id}`).join(" ")

/** Records as a table a person reads, as CSV, or as JSON (one array, every field). */
export const render = (
  records: ReadonlyArray<StoredRecord>,
  format: "table" | "json" | "csv"
): string => {
  if (format === "json") return JSON.stringify(records, null, 2)
  const header = [
    "created_at",
    "type",
    "organization_id",
    "actor",
    "targets",
    "ip_address",
    "id",
    "seq"
  ]
  const rows = records.map((r) => [
    r.created_at,
    r.type,
    r.organization_id ?? "",
    actorText(r),
    targetsText(r),
    r.ip_address ?? "",
    r.id,
    String(r.seq)
  ])
  // Only when a record has one: the usual table keeps its columns.
  if (records.some((r) => r.schema_mismatch !== undefined)) {
    header.push("schema_mismatch")
    for (const [i, r] of records.entries()) rows[i]!.push(r.schema_mismatch ?? "")
  }
  if (format === "csv") return [header, ...rows].map((row) => row.map(csvCell).join(",")).join("\n")
  const widths = header.map((h, i) =>
    Math.min(60, Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  )
  const line = (row: ReadonlyArray<string>) =>
    row
      .map((cell, i) =>
        cell.length > widths[i]! ? `${cell.slice(0, widths[i]! - 1)}…` : cell.padEnd(widths[i]!)
      )
      .join("  ")
      .trimEnd()
  return [
    line(header),
    ...rows.map(line),
    `(${records.length} record${records.length === 1 ? "" : "s"})`
  ].join("\n")
}

export const query = Command.make(
  "query",
  {
    ...storeFlags,
    type: Flag.String("type").pipe(
      Flag.withAlias("t"),
      Flag.withDescription(
        'An event type pattern ("dsync.user.*"); repeat or separate with commas'
      ),
      Flag.atLeast(0)
    ),
    org: Flag.String("org").pipe(Flag.withDescription("An organization id"), Flag.optional),
    actor: Flag.String("actor").pipe(
      Flag.withDescription("An actor id, name or email"),
      Flag.optional
    ),
    since: Flag.String("since").pipe(
      Flag.withDescription('Created at or after: an ISO-8601 time or a duration ago ("24h", "7d")'),
      Flag.optional
    ),
    until: Flag.String("until").pipe(
      Flag.withDescription('Created before: an ISO-8601 time or a duration ago ("1h")'),
      Flag.optional
    ),
    mismatched: Flag.Boolean("mismatched").pipe(
      Flag.withDefault(false),
      Flag.withDescription(
        "Only events that do not match the spec, recorded as WorkOS sent them (their schema_mismatch says where)"
      )
    ),
    limit: Flag.Int("limit").pipe(
      Flag.withDescription(`At most this many records, newest first (default ${defaultLimit})`),
      Flag.withDefault(defaultLimit)
    ),
    format: Flag.Literals("format", ["table", "json", "csv"]).pipe(
      Flag.withDescription("table (default), json or csv"),
      Flag.withDefault("table" as const)
    )
  },
  (flags) =>
    Effect.gen(function* () {
      const config = yield* storeConfig(flags)
      const query = yield* parseQuery({
        types: flags.type,
        org: Option.getOrUndefined(flags.org),
        actor: Option.getOrUndefined(flags.actor),
        since: Option.getOrUndefined(flags.since),
        until: Option.getOrUndefined(flags.until),
        mismatched: flags.mismatched,
        limit: flags.limit
      })
      const { records } = yield* queryStore(config, query)
      yield* Console.log(render(records, flags.format))
    })
).pipe(
  Command.withDescription(
    "Find audit records by type, organization, actor, time and spec mismatch; newest first"
  )
)

/** `workos-relay audit`: mount it in the runner with `Command.withSubcommands([..., audit])`. */
export const audit = Command.make("audit").pipe(
  Command.withDescription("Verify and query audit-log sinks; make digest signing keys"),
  Command.withSubcommands([verify, query, keygen, publicKey])
)
