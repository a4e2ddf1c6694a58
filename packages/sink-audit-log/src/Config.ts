/**
 * The options of an `audit-log` sink: which store, where, and how long to keep records.
 *
 * ```yaml
 * sinks:
 *   audit:
 *     type: audit-log
 *     store: sqlite               # sqlite (default) | postgres | jsonl
 *     path: ./.workos-relay/audit.db
 *     retention: 400 days
 * ```
 */
import * as fs from "node:fs"
import * as Path from "node:path"
import { Text } from "@workos-relay/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Digest from "./Digest.ts"
import { defaultPath } from "./SqliteStore.ts"

/**
 * `"400 days"`, `"400d"`, `"12 hours"`, `"2w"` (any unit of `Text.parseDuration`);
 * undefined when it is not a positive duration. A bare number is refused: its unit
 * (days? milliseconds?) would be a guess.
 */
export const parseRetention = (text: string): Duration.Duration | undefined => {
  const ms = /[a-z]\s*$/i.test(text) ? Text.parseDuration(text) : undefined
  return ms !== undefined && ms > 0 ? Duration.millis(ms) : undefined
}

/** How long records are kept: `"400 days"` or `"400d"` (units: ms, s, m, h, d, w). */
export const Retention = Schema.String.pipe(
  Schema.check(
    Schema.makeFilter((text: string) =>
      parseRetention(text) === undefined
        ? `retention must be a positive duration such as "400 days" or "400d", got ${JSON.stringify(text)}`
        : undefined
    )
  )
)

/** A positive duration: `"1 hour"`, `"15m"` (units ms, s, m, h, d, w). */
const Interval = Schema.String.pipe(
  Schema.check(
    Schema.makeFilter((text: string) =>
      parseRetention(text) === undefined
        ? `interval must be a positive duration such as "1 hour" or "15m", got ${JSON.stringify(text)}`
        : undefined
    )
  )
)

const keyProblem = (pem: string): string | undefined => {
  try {
    Digest.privateKeyFrom(pem)
    return undefined
  } catch (e) {
    return `privateKey must be an Ed25519 private key in PEM (workos-relay audit keygen makes one): ${(e as Error).message}`
  }
}

/**
 * Signed digests of the log's head (see the README, "Proving completeness"): where they
 * go, the Ed25519 key that signs them (`privateKey`, kept redacted, or `privateKeyFile`),
 * and how often (default every hour, and at shutdown).
 */
export const Digests = Schema.Struct({
  /** A folder of its own (one the log's writer does not need to rewrite). */
  directory: Schema.NonEmptyString,
  privateKey: Schema.optionalKey(
    Schema.RedactedFromValue(
      Schema.String.pipe(Schema.check(Schema.makeFilter((pem: string) => keyProblem(pem))))
    )
  ),
  privateKeyFile: Schema.optionalKey(Schema.NonEmptyString),
  interval: Interval.pipe(Schema.withDecodingDefaultKey(Effect.succeed("1 hour")))
}).pipe(
  Schema.check(
    Schema.makeFilter((d: { readonly privateKey?: unknown; readonly privateKeyFile?: unknown }) =>
      (d.privateKey === undefined) === (d.privateKeyFile === undefined)
        ? "digests needs exactly one of privateKey and privateKeyFile"
        : undefined
    )
  )
)
export type Digests = typeof Digests.Type

/** The default store: one SQLite file. */
export const Sqlite = Schema.Struct({
  store: Schema.optionalKey(Schema.Literal("sqlite")),
  /** The database file; created with its folder when missing. */
  path: Schema.NonEmptyString.pipe(Schema.withDecodingDefaultKey(Effect.succeed(defaultPath))),
  retention: Schema.optionalKey(Retention),
  digests: Schema.optionalKey(Digests)
})
export type Sqlite = typeof Sqlite.Type

export const Postgres = Schema.Struct({
  store: Schema.Literal("postgres"),
  /** `postgres://user:password@host:5432/database` (kept redacted). */
  url: Schema.RedactedFromValue(
    Schema.String.pipe(
      Schema.check(
        Schema.isPattern(/^postgres(ql)?:\/\/\S+$/, {
          message: "url must be a postgres:// or postgresql:// URL"
        })
      )
    )
  ),
  retention: Schema.optionalKey(Retention),
  digests: Schema.optionalKey(Digests)
})
export type Postgres = typeof Postgres.Type

export const Jsonl = Schema.Struct({
  store: Schema.Literal("jsonl"),
  /** The folder of day files; created when missing. */
  directory: Schema.NonEmptyString,
  /** Gzip the files of days that are over. */
  gzip: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(false))),
  retention: Schema.optionalKey(Retention),
  digests: Schema.optionalKey(Digests)
})
export type Jsonl = typeof Jsonl.Type

export const Config = Schema.Union([Sqlite, Postgres, Jsonl])
export type Config = typeof Config.Type

/**
 * The config with a relative `path` or `directory` made absolute against `directory`
 * (the config file's folder, as the runner's own paths are); unchanged without one.
 */
export const resolvePaths = (config: Config, directory: string | undefined): Config => {
  if (directory === undefined) return config
  if (config.digests !== undefined) {
    const d = config.digests
    config = {
      ...config,
      digests: {
        ...d,
        directory: Path.resolve(directory, d.directory),
        ...(d.privateKeyFile === undefined
          ? {}
          : { privateKeyFile: Path.resolve(directory, d.privateKeyFile) })
      }
    }
  }
  switch (config.store) {
    case "postgres":
      return config
    case "jsonl":
      return { ...config, directory: Path.resolve(directory, config.directory) }
    default:
      return config.path === ":memory:"
        ? config
        : { ...config, path: Path.resolve(directory, config.path) }
  }
}

/**
 * Where a relative path of `config` pointed before it was relative to the config file's
 * folder (the working directory), when a store is there and not where it points now:
 * opening would start a second, empty log.
 */
export const storeLeftBehind = (
  config: Config,
  directory: string | undefined
): { readonly was: string; readonly now: string } | undefined => {
  if (directory === undefined || config.store === "postgres") return undefined
  const given = config.store === "jsonl" ? config.directory : config.path
  if (given === ":memory:" || Path.isAbsolute(given)) return undefined
  const was = Path.resolve(given)
  const now = Path.resolve(directory, given)
  return was !== now && fs.existsSync(was) && !fs.existsSync(now) ? { was, now } : undefined
}
