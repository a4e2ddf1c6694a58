/**
 * Schemas of the file's single values: numbers and durations (a `${VAR}` gives a
 * string, so a string of one is taken too), URLs, event patterns; and their readers
 * for the decoded config, `numberOf`, `num` and `ms`.
 */
import { Text } from "@workos-relay/core"
import * as Schema from "effect/Schema"

/** A finite number, with `message` for NaN and Infinity (`.nan` and `.inf` in YAML). */
const FiniteNumber = (message: string) => Schema.Number.check(Schema.isFinite({ message }))

/** A number written as a string, as `${VAR}` gives one: `"50"`, `" 2.5 "`. */
export const numberOf = (input: string | number): number | undefined =>
  typeof input === "number"
    ? input
    : /^\s*-?\d+(?:\.\d+)?\s*$/.test(input)
      ? Number(input)
      : undefined

/**
 * A number from `min` (to `max`), or a string of one, so that `${VAR}` works; the
 * message says the range. Read it with `numberOf`.
 */
export const NumberInput = (range: {
  readonly min: number
  readonly max?: number
  readonly integer?: boolean
}) => {
  const kind = range.integer === true ? "an integer" : "a number"
  const between =
    range.max === undefined ? `of at least ${range.min}` : `from ${range.min} to ${range.max}`
  const expected = `expected ${kind} ${between}`
  return Schema.Union([FiniteNumber(expected), Schema.String])
    .check(
      Schema.makeFilter(
        (value) => {
          const n = numberOf(value)
          if (n === undefined) return `expected a number, got ${JSON.stringify(value)}`
          const inRange =
            n >= range.min &&
            (range.max === undefined || n <= range.max) &&
            (range.integer !== true || Number.isInteger(n))
          return inRange ? undefined : `${expected}, got ${JSON.stringify(value)}`
        },
        {
          // Looser than the check: a string is not checked to be a number in range.
          toJsonSchema: () => [
            {
              minimum: range.min,
              ...(range.max === undefined ? {} : { maximum: range.max })
            },
            true
          ]
        }
      )
    )
    .annotate({
      description: `${kind[0]!.toUpperCase()}${kind.slice(1)} ${between}, or a string of one (as \${VAR} gives)`
    })
}

/**
 * A duration from `min` to `max` milliseconds (`minText`, `maxText` say them for
 * people). Read it with `ms`.
 */
const DurationInput = (min: number, minText: string, max: number, maxText: string) =>
  Schema.Union([Schema.String, FiniteNumber(`expected a duration from ${minText} to ${maxText}`)])
    .check(
      Schema.makeFilter(
        (value) => {
          const duration = Text.parseDuration(value)
          if (duration === undefined)
            return `Expected a duration such as "500ms", "5s", "2m" or "1h", got ${JSON.stringify(value)}`
          return duration >= min && duration <= max
            ? undefined
            : `expected a duration from ${minText} to ${maxText}, got ${JSON.stringify(value)}`
        },
        // Looser than the check: a string is not checked to be a duration.
        { toJsonSchema: () => [{ minimum: min, maximum: max }, true] }
      )
    )
    .annotate({
      description: `A duration: "500ms", "5s", "2m", "1h" (a bare number is milliseconds), from ${minText} to ${maxText}`
    })

// A zero poll interval or lease polls WorkOS or the store in a busy loop; a zero
// retry delay retries a failing sink in one. At the other end: polling or renewing a
// lease less than hourly, or holding a batch for over an hour, is a typo (a standby
// would wait that long to take over); a retry window, delay or shutdown wait past a
// week is one too, and Node's timers overflow past 24.8 days (they fire at once).
const hour = 3_600_000
export const PollInterval = DurationInput(50, "50ms", hour, "1h")
/** The cluster's lock and heartbeat timings: below 100ms is a busy loop, past 10m no failover. */
export const ClusterInterval = DurationInput(100, "100ms", 10 * 60_000, "10m")
export const LeaseTtl = DurationInput(1000, "1s", hour, "1h")
export const PositiveDuration = DurationInput(1, "1ms", 7 * 24 * hour, "7d")
/** 0 is fine: a batch goes out with what is there. */
export const MaxWait = DurationInput(0, "0ms", hour, "1h")

export const PositiveInt = NumberInput({ min: 1, integer: true })

/** An absolute URL with one of `protocols`; `new URL` throws on anything else later. */
const hasProtocol = (text: string, protocols: ReadonlyArray<string>): boolean => {
  const url = URL.parse(text)
  return url !== null && protocols.includes(url.protocol)
}

/** `url` with any `user:password@` replaced, so that a message never repeats a secret. */
export const withoutCredentials = (url: string): string =>
  url.replace(/^([^:/?#]*:?\/*)[^/?#@]*@/, "$1***@")

export const HttpUrl = Schema.String.check(
  Schema.makeFilter(
    (url) =>
      hasProtocol(url, ["http:", "https:"])
        ? undefined
        : `expected an http(s) URL such as https://api.workos.com, got ${JSON.stringify(withoutCredentials(url))}`,
    { toJsonSchema: () => [{ pattern: "^https?://" }, true] }
  )
)

// The URL holds a password: the message does not repeat it.
export const PostgresUrl = Schema.String.check(
  Schema.makeFilter(
    (url) =>
      hasProtocol(url, ["postgres:", "postgresql:"])
        ? undefined
        : "expected a Postgres URL such as postgres://user:password@host:5432/db",
    { toJsonSchema: () => [{ pattern: "^postgres(ql)?://" }, true] }
  )
)

export const Patterns = Schema.Array(Schema.String).annotate({
  description: 'Event type patterns: "dsync.user.created", "dsync.*", "authentication.*_failed"'
})

/** A duration as the file gives it (checked already), or `fallback` when absent. */
export const ms = (input: string | number | undefined, fallback: number): number =>
  input === undefined ? fallback : Text.parseDuration(input)!

/** A number as the file gives it (checked already), or `fallback` when absent. */
export const num = (input: string | number | undefined, fallback: number): number =>
  input === undefined ? fallback : numberOf(input)!
