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
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { defaultPath } from "./SqliteStore.ts"

const units: Record<string, number> = {
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 7 * 86_400_000,
  week: 7 * 86_400_000,
  weeks: 7 * 86_400_000
}

/** `"400 days"`, `"400d"`, `"12 hours"`, `"2w"`; undefined when it is not a positive duration. */
export const parseRetention = (text: string): Duration.Duration | undefined => {
  const m = /^\s*(\d+)\s*([a-z]+)\s*$/.exec(text)
  if (m !== null) {
    const unit = units[m[2]!]
    const n = Number(m[1])
    return unit === undefined || n <= 0 ? undefined : Duration.millis(n * unit)
  }
  const d = Duration.fromInput(text as Duration.Input)
  return Option.isSome(d) && Duration.toMillis(d.value) > 0 ? d.value : undefined
}

/** How long records are kept: `"400 days"` or `"400d"` (units: m, h, d, w). */
export const Retention = Schema.String.pipe(
  Schema.check(
    Schema.makeFilter((text: string) =>
      parseRetention(text) === undefined
        ? `retention must be a positive duration such as "400 days" or "400d", got ${JSON.stringify(text)}`
        : undefined
    )
  )
)

/** The default store: one SQLite file. */
export const Sqlite = Schema.Struct({
  store: Schema.optionalKey(Schema.Literal("sqlite")),
  /** The database file; created with its folder when missing. */
  path: Schema.NonEmptyString.pipe(Schema.withDecodingDefaultKey(Effect.succeed(defaultPath))),
  retention: Schema.optionalKey(Retention)
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
  retention: Schema.optionalKey(Retention)
})
export type Postgres = typeof Postgres.Type

export const Jsonl = Schema.Struct({
  store: Schema.Literal("jsonl"),
  /** The folder of day files; created when missing. */
  directory: Schema.NonEmptyString,
  /** Gzip the files of days that are over. */
  gzip: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(false))),
  retention: Schema.optionalKey(Retention)
})
export type Jsonl = typeof Jsonl.Type

export const Config = Schema.Union([Sqlite, Postgres, Jsonl])
export type Config = typeof Config.Type
