/**
 * The options of a `mirror` sink: which database, and how its tables are named.
 *
 * ```yaml
 * sinks:
 *   mirror:
 *     type: mirror
 *     store: sqlite               # sqlite (default) | postgres
 *     path: ./.workos-relay/mirror.db
 *     prefix: workos_             # table names: workos_users, workos_organizations, ...
 *     lockWait: 30s               # SQLite: how long a batch waits out another process's lock
 *     reconcile:
 *       every: 6h                 # optional: reconcile with WorkOS's lists while `run` runs
 * ```
 */
import * as Path from "node:path"
import { Text } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { identifierPattern } from "./internal/Sql.ts"
import { defaultPath } from "./SqliteStore.ts"

const Identifier = (what: string) =>
  Schema.String.pipe(
    Schema.check(
      Schema.isPattern(identifierPattern, {
        message: `${what} must be letters, digits and _ (not starting with a digit)`
      })
    )
  )

/** Prepended to every table name (`workos_` by default; `""` for none). */
const Prefix = Schema.String.pipe(
  Schema.check(
    Schema.makeFilter((s: string) =>
      s === "" || identifierPattern.test(s)
        ? undefined
        : `prefix must be letters, digits and _ (not starting with a digit), got ${JSON.stringify(s)}`
    )
  )
)

export const defaultPrefix = "workos_"

const minute = 60_000
/** How often `run` reconciles: a duration from 1s to 7d ("30m", "6h"). */
const Every = Schema.String.pipe(
  Schema.check(
    Schema.makeFilter((s: string) => {
      const ms = Text.parseDuration(s)
      if (ms === undefined)
        return `expected a duration such as "30m" or "6h", got ${JSON.stringify(s)}`
      return ms >= 1000 && ms <= 7 * 24 * 60 * minute
        ? undefined
        : `expected a duration from 1s to 7d, got ${JSON.stringify(s)}`
    })
  )
)
const Reconcile = Schema.optionalKey(Schema.Struct({ every: Every }))

/** SQLite: how long an operation waits out another process's write lock, from 100ms to 1h ("30s"). */
const LockWait = Schema.String.pipe(
  Schema.check(
    Schema.makeFilter((s: string) => {
      const ms = Text.parseDuration(s)
      if (ms === undefined) return `expected a duration such as "30s", got ${JSON.stringify(s)}`
      return ms >= 100 && ms <= 60 * minute
        ? undefined
        : `expected a duration from 100ms to 1h, got ${JSON.stringify(s)}`
    })
  )
)

/** `lockWait` in ms (undefined: the store's default). */
export const lockWaitMs = (config: Config): number | undefined =>
  config.store === "postgres" || config.lockWait === undefined
    ? undefined
    : Text.parseDuration(config.lockWait)

/** The default store: one SQLite file. */
export const Sqlite = Schema.Struct({
  store: Schema.optionalKey(Schema.Literal("sqlite")),
  /** The database file; created with its folder when missing. */
  path: Schema.NonEmptyString.pipe(Schema.withDecodingDefaultKey(Effect.succeed(defaultPath))),
  prefix: Prefix.pipe(Schema.withDecodingDefaultKey(Effect.succeed(defaultPrefix))),
  lockWait: Schema.optionalKey(LockWait),
  reconcile: Reconcile
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
  /** The schema the tables go in (created when missing); `public` when absent. */
  schema: Schema.optionalKey(Identifier("schema")),
  prefix: Prefix.pipe(Schema.withDecodingDefaultKey(Effect.succeed(defaultPrefix))),
  reconcile: Reconcile
})
export type Postgres = typeof Postgres.Type

export const Config = Schema.Union([Sqlite, Postgres])
export type Config = typeof Config.Type

/** The config with a relative SQLite `path` made absolute against `directory` (the config file's folder). */
export const resolvePaths = (config: Config, directory: string | undefined): Config =>
  directory === undefined || config.store === "postgres" || config.path === ":memory:"
    ? config
    : { ...config, path: Path.resolve(directory, config.path) }
