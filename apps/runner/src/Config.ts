/**
 * The config file: YAML (JSON is YAML too), `${VAR}` and `${VAR:-default}` read
 * from the environment, decoded with Schema. Every problem of a file is reported
 * at once, each with its path, and a misspelt key with the closest known one.
 *
 * A sink entry mixes the runner's keys (type, module, events, organizations, batch,
 * retry) with the sink's own options, which its definition's `config` Schema decodes.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Event, EventPattern, type Sink, Text } from "@workos-relay/core"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Yaml from "yaml"
import * as Registry from "./Registry.ts"

// ---------------------------------------------------------------------------
// Schemas of the runner's own keys

/** A finite number, with `message` for NaN and Infinity (`.nan` and `.inf` in YAML). */
const FiniteNumber = (message: string) => Schema.Number.check(Schema.isFinite({ message }))

/** A number written as a string, as `${VAR}` gives one: `"50"`, `" 2.5 "`. */
const numberOf = (input: string | number): number | undefined =>
  typeof input === "number"
    ? input
    : /^\s*-?\d+(?:\.\d+)?\s*$/.test(input)
      ? Number(input)
      : undefined

/**
 * A number from `min` (to `max`), or a string of one, so that `${VAR}` works; the
 * message says the range. Read it with `numberOf`.
 */
const NumberInput = (range: {
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

/** A duration of at least `min` milliseconds (`minText` says it for people). Read it with `ms`. */
const DurationInput = (min: number, minText: string) =>
  Schema.Union([Schema.String, FiniteNumber(`expected a duration of at least ${minText}`)])
    .check(
      Schema.makeFilter(
        (value) => {
          const duration = Text.parseDuration(value)
          if (duration === undefined)
            return `Expected a duration such as "500ms", "5s", "2m" or "1h", got ${JSON.stringify(value)}`
          return duration >= min
            ? undefined
            : `expected a duration of at least ${minText}, got ${JSON.stringify(value)}`
        },
        // Looser than the check: a string is not checked to be a duration.
        { toJsonSchema: () => [{ minimum: min }, true] }
      )
    )
    .annotate({
      description: `A duration: "500ms", "5s", "2m", "1h" (a bare number is milliseconds)${min > 0 ? `, at least ${minText}` : ""}`
    })

// A zero poll interval or lease polls WorkOS or the store in a busy loop; a zero
// retry delay retries a failing sink in one.
const PollInterval = DurationInput(50, "50ms")
const LeaseTtl = DurationInput(1000, "1s")
const PositiveDuration = DurationInput(1, "1ms")
/** 0 is fine: a batch goes out with what is there. */
const MaxWait = DurationInput(0, "0ms")

const PositiveInt = NumberInput({ min: 1, integer: true })

/** An absolute URL with one of `protocols`; `new URL` throws on anything else later. */
const hasProtocol = (text: string, protocols: ReadonlyArray<string>): boolean => {
  const url = URL.parse(text)
  return url !== null && protocols.includes(url.protocol)
}

const HttpUrl = Schema.String.check(
  Schema.makeFilter(
    (url) =>
      hasProtocol(url, ["http:", "https:"])
        ? undefined
        : `expected an http(s) URL such as https://api.workos.com, got ${JSON.stringify(url)}`,
    { toJsonSchema: () => [{ pattern: "^https?://" }, true] }
  )
)

// The URL holds a password: the message does not repeat it.
const PostgresUrl = Schema.String.check(
  Schema.makeFilter(
    (url) =>
      hasProtocol(url, ["postgres:", "postgresql:"])
        ? undefined
        : "expected a Postgres URL such as postgres://user:password@host:5432/db",
    { toJsonSchema: () => [{ pattern: "^postgres(ql)?://" }, true] }
  )
)

const Patterns = Schema.Array(Schema.String).annotate({
  description: 'Event type patterns: "dsync.user.created", "dsync.*", "authentication.*_failed"'
})

const WorkOSSource = Schema.Struct({
  type: Schema.Literal("workos"),
  apiKey: Schema.optionalKey(
    Schema.Redacted(Schema.String).annotate({
      description:
        "WorkOS secret key (sk_...); when absent, the environment variable WORKOS_API_KEY"
    })
  ),
  baseUrl: Schema.optionalKey(HttpUrl),
  events: Schema.optionalKey(Patterns),
  organization: Schema.optionalKey(Event.OrganizationId),
  start: Schema.optionalKey(
    Schema.String.annotate({
      description:
        'Where a sink with no checkpoint starts: "latest" (default), "earliest", an ISO-8601 time, or an event id'
    })
  ),
  pollInterval: Schema.optionalKey(PollInterval),
  pageSize: Schema.optionalKey(NumberInput({ min: 1, max: 100, integer: true }))
})

const DemoSource = Schema.Struct({
  type: Schema.Literal("demo"),
  /** Events per second the stand-in produces. */
  rate: Schema.optionalKey(NumberInput({ min: 0 })),
  pollInterval: Schema.optionalKey(PollInterval)
})

const State = Schema.Struct({
  sqlite: Schema.optionalKey(
    Schema.String.annotate({ description: "SQLite file; default ./.workos-relay/state.db" })
  ),
  postgres: Schema.optionalKey(
    Schema.Redacted(PostgresUrl).annotate({ description: "A Postgres URL; ${DATABASE_URL}" })
  ),
  leaseTtl: Schema.optionalKey(LeaseTtl)
})

const Batch = Schema.Struct({
  maxEvents: Schema.optionalKey(PositiveInt),
  maxBytes: Schema.optionalKey(PositiveInt),
  maxWait: Schema.optionalKey(MaxWait)
})

const Retry = Schema.Struct({
  initialDelay: Schema.optionalKey(PositiveDuration),
  maxDelay: Schema.optionalKey(PositiveDuration),
  maxDuration: Schema.optionalKey(PositiveDuration)
})

/** The runner's keys of a sink entry; every other key belongs to the sink. */
export const SinkKeys = Schema.Struct({
  type: Schema.optionalKey(Schema.String),
  module: Schema.optionalKey(Schema.String),
  events: Schema.optionalKey(Patterns),
  organizations: Schema.optionalKey(Schema.Array(Event.OrganizationId)),
  batch: Schema.optionalKey(Batch),
  retry: Schema.optionalKey(Retry)
})
const runnerSinkKeys = ["type", "module", "events", "organizations", "batch", "retry"]

const Http = Schema.Struct({
  address: Schema.String.annotate({
    description: 'host:port for /healthz, /readyz, /metrics; "127.0.0.1:9464"'
  })
})

const Log = Schema.Struct({
  level: Schema.optionalKey(Schema.Literals(["trace", "debug", "info", "warn", "error"])),
  format: Schema.optionalKey(Schema.Literals(["auto", "json", "logfmt"]))
})

/** The file, with sinks as raw entries (decoded separately, each with its own Schema). */
export const File = Schema.Struct({
  source: Schema.Union([WorkOSSource, DemoSource]),
  state: Schema.optionalKey(State),
  events: Schema.optionalKey(Patterns),
  organizations: Schema.optionalKey(Schema.Array(Event.OrganizationId)),
  http: Schema.optionalKey(Http),
  log: Schema.optionalKey(Log),
  shutdownTimeout: Schema.optionalKey(PositiveDuration),
  sinks: Schema.Record(Schema.String, Schema.Unknown)
})
type FileType = typeof File.Type

// ---------------------------------------------------------------------------
// The decoded config

export type Source =
  | {
      readonly type: "workos"
      readonly apiKey: Redacted.Redacted<string>
      readonly baseUrl: string
      readonly events: ReadonlyArray<string> | undefined
      readonly organization: string | undefined
      readonly start: string
      readonly pollInterval: number
      readonly pageSize: number
    }
  | { readonly type: "demo"; readonly rate: number; readonly pollInterval: number }

export type State =
  | { readonly type: "sqlite"; readonly path: string; readonly leaseTtl: number }
  | {
      readonly type: "postgres"
      readonly url: Redacted.Redacted<string>
      readonly leaseTtl: number
    }

export interface RetrySettings {
  readonly initialDelay: number
  readonly maxDelay: number
  /** How long an event is retried before it is dead-lettered. */
  readonly maxDuration: number
}

export interface SinkConfig {
  readonly name: string
  readonly type: string
  readonly definition: Sink.Definition
  /** The sink's own options, decoded by its Schema. */
  readonly options: unknown
  /** Every list must select an event for the sink to get it (definition, file, entry). */
  readonly patterns: ReadonlyArray<ReadonlyArray<string>>
  readonly organizations: ReadonlyArray<string> | undefined
  readonly batch: {
    readonly maxEvents?: number
    readonly maxBytes?: number
    readonly maxWait?: number
  }
  readonly retry: RetrySettings
  /** The config file's folder: relative paths in the sink's options are relative to it. */
  readonly directory: string
}

export interface RelayConfig {
  /** The file it came from; undefined for embedded configs (demo). */
  readonly path: string | undefined
  readonly source: Source
  readonly state: State
  readonly http: { readonly host: string; readonly port: number } | undefined
  readonly log: { readonly level: string; readonly format: "auto" | "json" | "logfmt" }
  readonly shutdownTimeout: number
  readonly sinks: ReadonlyArray<SinkConfig>
}

export const defaults = {
  statePath: "./.workos-relay/state.db",
  leaseTtl: 15_000,
  pollInterval: 5_000,
  pageSize: 100,
  demoRate: 4,
  shutdownTimeout: 30_000,
  retry: { initialDelay: 500, maxDelay: 60_000, maxDuration: 3_600_000 }
} as const

// ---------------------------------------------------------------------------
// Errors

/** One thing wrong with the file, where. */
export interface Problem {
  readonly path: string
  readonly message: string
}

/** The config cannot be used; the message lists every problem. */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly file: string
  readonly problems: ReadonlyArray<Problem>
}> {
  override get message(): string {
    const n = this.problems.length
    const lines = this.problems.map((p) => `  - ${p.path === "" ? "" : `${p.path}: `}${p.message}`)
    return [`${this.file}: ${n} problem${n === 1 ? "" : "s"} in the config`, ...lines].join("\n")
  }
}

// ---------------------------------------------------------------------------
// Interpolation

// The last alternative is any other `${`, to the next `}` or the end: a mistake.
const interpolation = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?/g

/** Replaces `${VAR}` and `${VAR:-default}` in every string; `$${` is a literal `${`. */
export const interpolate = (
  value: unknown,
  env: Readonly<Record<string, string | undefined>>,
  path: string,
  problems: Array<Problem>
): unknown => {
  if (typeof value === "string") {
    return value.replace(
      interpolation,
      (match, name: string | undefined, fallback: string | undefined) => {
        if (match === "$${") return "${"
        if (name === undefined) {
          problems.push({
            path,
            message: match.endsWith("}")
              ? `bad variable "${match}": a name is letters, digits and _, not starting with a digit ($\${ is a literal \${)`
              : `no closing } in "${match}" (write \${NAME} or \${NAME:-default}; $\${ is a literal \${)`
          })
          return match
        }
        const found = env[name]
        if (found !== undefined && found !== "") return found
        if (fallback !== undefined) return fallback
        problems.push({
          path,
          message: `environment variable ${name} is not set (write \${${name}:-default} for a default)`
        })
        return ""
      }
    )
  }
  if (Array.isArray(value))
    return value.map((v, i) => interpolate(v, env, `${path}[${i}]`, problems))
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value))
      out[k] = interpolate(v, env, joinPath(path, k), problems)
    return out
  }
  return value
}

// ---------------------------------------------------------------------------
// Decoding

const joinPath = (base: string, key: PropertyKey): string =>
  typeof key === "number"
    ? `${base}[${key}]`
    : /^[A-Za-z_$][\w$-]*$/.test(String(key))
      ? base === ""
        ? String(key)
        : `${base}.${String(key)}`
      : `${base}[${JSON.stringify(String(key))}]`

/** The keys a schema accepts at a path, for "did you mean" (through unions, suspends, encodings). */
const keysAt = (ast: SchemaAST.AST, path: ReadonlyArray<PropertyKey>): Array<string> => {
  const node: any = ast
  if (node._tag === "Union") return node.types.flatMap((t: SchemaAST.AST) => keysAt(t, path))
  if (node._tag === "Suspend") return keysAt(node.thunk(), path)
  if (node._tag !== "Objects") return []
  if (path.length === 0) return node.propertySignatures.map((ps: any) => String(ps.name))
  const [head, ...rest] = path
  const next = node.propertySignatures.find((ps: any) => ps.name === head)
  return next === undefined ? [] : keysAt(next.type, rest)
}

/** The keys of each member of a union schema whose type is a literal (`store: "jsonl"`). */
const literalKeys = (
  schema: Schema.Top
): Array<{ readonly member: Schema.Top; readonly key: string; readonly value: unknown }> => {
  const members: unknown = (schema as { members?: unknown }).members
  if (!Array.isArray(members)) return []
  return (members as Array<Schema.Top>).flatMap((member) => {
    const node: any = member.ast
    if (node._tag !== "Objects") return []
    return node.propertySignatures
      .filter((ps: any) => ps.type._tag === "Literal")
      .map((ps: any) => ({ member, key: String(ps.name), value: ps.type.literal }))
  })
}

/** The one member of a union schema that the input names by a literal key it sets (`store: jsonl`). */
const namedMember = (schema: Schema.Top, input: unknown): Schema.Top | undefined => {
  if (!isRecord(input)) return undefined
  const named = new Set(
    literalKeys(schema)
      .filter(({ key, value }) => Object.hasOwn(input, key) && input[key] === value)
      .map(({ member }) => member)
  )
  return named.size === 1 ? [...named][0] : undefined
}

/** The key that takes `value` as its literal in some member of a union (`jsonl` -> `store`). */
const literalKeyOf = (schema: Schema.Top, value: string): string | undefined =>
  literalKeys(schema).find((literal) => literal.value === value)?.key

const isRecord = (v: unknown): v is Record<string, any> =>
  typeof v === "object" && v !== null && !Array.isArray(v)
const isString = (v: unknown): v is string => typeof v === "string"

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const valueAt = (input: unknown, keys: ReadonlyArray<PropertyKey>): unknown =>
  keys.reduce<unknown>(
    (v, k) => (typeof v === "object" && v !== null ? (v as any)[k] : undefined),
    input
  )

/** What the JSON codec of `Schema.Number` says of any other string. */
const nonFiniteStrings = 'Expected "Infinity" | "-Infinity" | "NaN"'

/** Decodes with every problem collected, each with its path under `base`. */

const decodeAll = <A>(
  schema: Schema.Codec<A, unknown>,
  ast: SchemaAST.AST,
  input: unknown,
  base: string,
  problems: Array<Problem>
): A | undefined => {
  const result = Schema.decodeUnknownResult(Schema.toCodecJson(schema) as Schema.Codec<A, unknown>)(
    input,
    { errors: "all", onExcessProperty: "error" }
  )
  if (Result.isSuccess(result)) return result.success
  const push = (problem: Problem) => {
    // A union reports a problem once per member that has it.
    if (!problems.some((p) => p.path === problem.path && p.message === problem.message))
      problems.push(problem)
  }
  for (const issue of formatIssues(result.failure.issue).issues) {
    const keys = (issue.path ?? []).map((k: any) =>
      typeof k === "object" ? k.key : k
    ) as Array<PropertyKey>
    // The JSON codec's word for a value such as .inf somewhere inside a mapping or list
    // (`sinks.out`, whose keys are decoded later): the check of that value says more.
    if (issue.message === "Expected JSON value" && typeof valueAt(input, keys) === "object")
      continue
    const path = keys.reduce<string>((acc, k) => joinPath(acc, k), base)
    if (issue.message === "Expected no excess property") {
      const key = String(keys[keys.length - 1])
      // A key of another member of a union is known, but not here: no self-suggestion.
      const [hint] = Text.closest(
        key,
        keysAt(ast, keys.slice(0, -1)).filter((known) => known !== key)
      )
      push({
        path,
        message: `unknown key${hint === undefined ? "" : `; did you mean "${hint}"?`}`
      })
    } else if (issue.message === "Missing key") {
      push({ path, message: "required key is missing" })
    } else if (issue.message === nonFiniteStrings) {
      // A string where a number goes: the JSON codec would take only these three.
      push({ path, message: `expected a number, got ${JSON.stringify(valueAt(input, keys))}` })
    } else {
      push({ path, message: issue.message })
    }
  }
  return undefined
}

const sourceTypes = { workos: WorkOSSource, demo: DemoSource } as const

/**
 * Says what is wrong with `source` in its own words, not the Schema's union of every
 * source type: a missing or unknown `type`, or a key of the other type.
 */
const checkSourceType = (raw: Record<string, unknown>, problems: Array<Problem>) => {
  const source = raw.source
  if (source === undefined) return
  const replace = (problem: Problem) => {
    // The Schema's own report of the same thing, as `source: Expected { ... } | { ... }`.
    const at = problems.findIndex((p) => p.path === "source")
    if (at === -1) problems.push(problem)
    else problems[at] = problem
  }
  if (!isRecord(source)) {
    replace({ path: "source", message: "expected a mapping with type: workos or demo" })
    return
  }
  const type: unknown = source.type
  if (type !== "workos" && type !== "demo") {
    replace({
      path: "source.type",
      message: `expected "workos" or "demo"${type === undefined ? "" : `, got ${JSON.stringify(type)}`}`
    })
    return
  }
  const other = type === "workos" ? "demo" : "workos"
  problems.forEach((p, i) => {
    const key = p.path.startsWith("source.") ? p.path.slice("source.".length) : undefined
    if (
      key !== undefined &&
      p.message.startsWith("unknown key") &&
      Object.hasOwn(sourceTypes[other].fields, key) &&
      !Object.hasOwn(sourceTypes[type].fields, key)
    )
      problems[i] = { path: p.path, message: `only for source type ${other}` }
  })
}

/**
 * Whether a sink's pattern lists (its type's, the file's, its own), each valid, leave
 * it no event: no known type is in all of them, and not all take unknown types (`*`).
 */
const nothingPasses = (lists: ReadonlyArray<ReadonlyArray<string>>): boolean =>
  // An empty list or an unknown pattern has its own problem already.
  lists.every((list) => list.length > 0 && Result.isSuccess(EventPattern.validate(list))) &&
  !lists.every((list) => list.includes("*")) &&
  !Event.eventTypes.some((type) =>
    lists.every((list) => list.some((pattern) => EventPattern.matchesName(pattern, type)))
  )

/** Checks each pattern of a list as written (other entries are the Schema's to report). */
const checkPatterns = (patterns: unknown, path: string, problems: Array<Problem>) => {
  if (!Array.isArray(patterns)) return
  // Read as "every type" by some, it would let no event through.
  if (patterns.length === 0)
    problems.push({
      path,
      message:
        'an empty list lets no event through; leave the key out for every type, or give patterns such as "dsync.*"'
    })
  patterns.forEach((pattern, i) => {
    if (!isString(pattern)) return
    const checked = EventPattern.validate([pattern])
    if (Result.isFailure(checked))
      problems.push({ path: `${path}[${i}]`, message: checked.failure.message })
  })
}

/**
 * What is wrong with an ISO-8601 time, if anything. `Date.parse` rolls a day past the
 * month's end over ("2026-02-30" is March 2) and reads "10" as October 2001.
 */
const startTimeProblem = (text: string): string | undefined => {
  const date = /^\s*(\d{4})-(\d{2})-(\d{2})/.exec(text)
  if (date === null || Number.isNaN(Date.parse(text)))
    return `expected "latest", "earliest", an ISO-8601 time or an event id (event_...), got "${text}"`
  if (Text.parseInstant(text) !== undefined) return undefined
  // Only a day past the month's end parses yet is refused (see Text.parseInstant).
  const [year, month] = date.slice(1).map(Number) as [number, number]
  const monthName = new Date(Date.UTC(year, month - 1, 1)).toLocaleString("en", {
    month: "long",
    timeZone: "UTC"
  })
  return `"${text}" is not a date: ${monthName} ${year} has ${Text.daysInMonth(year, month)} days`
}

const ms = (input: string | number | undefined, fallback: number): number =>
  input === undefined ? fallback : Text.parseDuration(input)!

const retrySettings = (
  retry: { readonly [K in keyof RetrySettings]?: string | number } | undefined
): RetrySettings => ({
  initialDelay: ms(retry?.initialDelay, defaults.retry.initialDelay),
  maxDelay: ms(retry?.maxDelay, defaults.retry.maxDelay),
  maxDuration: ms(retry?.maxDuration, defaults.retry.maxDuration)
})

/** The backoff doubles from initialDelay up to maxDelay: the other way round is a mistake. */
const checkRetryOrder = (retry: unknown, path: string, problems: Array<Problem>) => {
  if (!isRecord(retry)) return
  // A duration that is not one: the Schema said so already.
  const duration = (input: unknown, fallback: number) =>
    input === undefined
      ? fallback
      : typeof input === "string" || typeof input === "number"
        ? Text.parseDuration(input)
        : undefined
  const initialDelay = duration(retry.initialDelay, defaults.retry.initialDelay)
  const maxDelay = duration(retry.maxDelay, defaults.retry.maxDelay)
  if (initialDelay === undefined || maxDelay === undefined || initialDelay <= maxDelay) return
  const initial =
    retry.initialDelay === undefined
      ? `${defaults.retry.initialDelay}ms, the default`
      : JSON.stringify(retry.initialDelay)
  problems.push(
    retry.maxDelay === undefined
      ? {
          path: `${path}.initialDelay`,
          message: `expected at most maxDelay (${defaults.retry.maxDelay / 1000}s, the default), got ${initial}`
        }
      : {
          path: `${path}.maxDelay`,
          message: `expected at least initialDelay (${initial}), got ${JSON.stringify(retry.maxDelay)}`
        }
  )
}

const num = (input: string | number | undefined, fallback: number): number =>
  input === undefined ? fallback : numberOf(input)!

const parseAddress = (address: string, problems: Array<Problem>) => {
  const match = /^(.*):(\d+)$/.exec(address)
  const port = match === null ? Number.NaN : Number(match[2])
  if (match === null || port > 65535) {
    problems.push({
      path: "http.address",
      message: `expected host:port such as "127.0.0.1:9464", got "${address}"`
    })
    return undefined
  }
  return { host: match[1] === "" ? "127.0.0.1" : match[1]!.replace(/^\[|\]$/g, ""), port }
}

/**
 * Decodes a parsed document: interpolation, the runner's keys, each sink's entry
 * (loading its definition) and options. `file` names the source in errors; relative
 * sink modules and the SQLite path resolve from `baseDir`.
 */
export const decode = (
  document: unknown,
  options: {
    readonly file: string
    readonly baseDir: string
    readonly env?: Readonly<Record<string, string | undefined>>
  }
): Effect.Effect<RelayConfig, ConfigError> =>
  Effect.gen(function* () {
    const problems: Array<Problem> = []
    // A value whose variable is missing or malformed has one problem, not also the
    // one its stand-in ("" or the text as written) has.
    let interpolationProblems = 0
    const fail = () => {
      const badVariables = new Set(problems.slice(0, interpolationProblems).map((p) => p.path))
      const shown = problems.filter(
        (p, i) => i < interpolationProblems || !badVariables.has(p.path)
      )
      return Effect.fail(new ConfigError({ file: options.file, problems: shown }))
    }
    if (typeof document !== "object" || document === null || Array.isArray(document)) {
      problems.push({
        path: "",
        message: "expected a mapping with source and sinks (and state, optionally)"
      })
      return yield* fail()
    }
    const interpolated = interpolate(document, options.env ?? process.env, "", problems)
    interpolationProblems = problems.length
    const file = decodeAll<FileType>(File as any, File.ast, interpolated, "", problems)
    // Whether or not the file decoded, every check below runs on what is there, so one
    // error lists every problem.
    const raw = interpolated as Record<string, any>
    const rawSource = isRecord(raw.source) ? raw.source : {}
    const rawState = isRecord(raw.state) ? raw.state : {}
    const rawSinks: Record<string, unknown> = isRecord(raw.sinks) ? raw.sinks : {}
    checkSourceType(raw, problems)
    checkPatterns(raw.events, "events", problems)
    const env = options.env ?? process.env
    // As WorkOS's own SDKs do, the key comes from WORKOS_API_KEY when the file has none.
    const envApiKey = env.WORKOS_API_KEY === "" ? undefined : env.WORKOS_API_KEY
    if (rawSource.type === "workos" && rawSource.apiKey === undefined && envApiKey === undefined) {
      problems.push({
        path: "source.apiKey",
        message:
          "no API key: set WORKOS_API_KEY in the environment, or give one here (apiKey: ${MY_WORKOS_KEY})"
      })
    }
    if (rawSource.type === "workos") {
      checkPatterns(rawSource.events, "source.events", problems)
      const start = rawSource.start
      if (
        typeof start === "string" &&
        start !== "latest" &&
        start !== "earliest" &&
        !start.startsWith("event_")
      ) {
        const problem = startTimeProblem(start)
        if (problem !== undefined) problems.push({ path: "source.start", message: problem })
      }
    }
    if (rawState.sqlite !== undefined && rawState.postgres !== undefined) {
      problems.push({ path: "state", message: "give either sqlite or postgres, not both" })
    }
    const http =
      isRecord(raw.http) && typeof raw.http.address === "string"
        ? parseAddress(raw.http.address, problems)
        : undefined
    const sinkNames = Object.keys(rawSinks)
    if (isRecord(raw.sinks) && sinkNames.length === 0)
      problems.push({
        path: "sinks",
        message: "no sinks: add at least one (type: console prints every event)"
      })

    const sinks: Array<SinkConfig> = []
    for (const name of sinkNames) {
      const base = joinPath("sinks", name)
      // `--sink a,b` must be able to name every sink.
      if (name.trim() === "" || name.includes(","))
        problems.push({
          path: base,
          message: `a sink name must not be empty or hold a comma (--sink takes comma-separated names), got ${JSON.stringify(name)}`
        })
      const entry = rawSinks[name]
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
        problems.push({ path: base, message: "expected a mapping with at least `type`" })
        continue
      }
      const own: Record<string, unknown> = {}
      const runner: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(entry)) (runnerSinkKeys.includes(k) ? runner : own)[k] = v
      const keys = decodeAll(SinkKeys, SinkKeys.ast, runner, base, problems)
      // The patterns, the retry delays' order and the sink's own options are checked even
      // when another of the runner's keys (batch, retry) is wrong, so that one error lists
      // every problem.
      checkPatterns(runner.events, `${base}.events`, problems)
      checkRetryOrder(runner.retry, `${base}.retry`, problems)
      const reference = {
        type: isString(runner.type) ? runner.type : undefined,
        module: isString(runner.module) ? runner.module : undefined
      }
      // A type or module that is not a string: the Schema said so already.
      if (runner.type !== reference.type || runner.module !== reference.module) continue
      const resolved = yield* Effect.result(Registry.resolve(reference, options.baseDir))
      if (Result.isFailure(resolved)) {
        problems.push({
          path: reference.module !== undefined ? `${base}.module` : `${base}.type`,
          message: resolved.failure
        })
        continue
      }
      const definition = resolved.success
      const before = problems.length
      const decoded = decodeAll(definition.config, definition.config.ast, own, base, problems)
      // Options of several shapes told apart by a key (audit-log's `store: jsonl`): the
      // problems of the shape the entry names, not of every shape.
      const shape = decoded === undefined ? namedMember(definition.config, own) : undefined
      if (shape !== undefined) {
        problems.length = before
        decodeAll(shape as Schema.Codec<unknown, unknown>, shape.ast, own, base, problems)
      }
      // A selector (`store`) with a value no shape takes: say which it takes, in place
      // of each shape's own "Expected ..." for it.
      const literals = literalKeys(definition.config)
      for (const key of new Set(literals.map((l) => l.key))) {
        const allowed = literals.filter((l) => l.key === key).map((l) => JSON.stringify(l.value))
        const value = own[key]
        if (value === undefined || allowed.includes(JSON.stringify(value))) continue
        const at = joinPath(base, key)
        for (let i = problems.length - 1; i >= before; i--)
          if (problems[i]!.path === at) problems.splice(i, 1)
        problems.push({
          path: at,
          message: `expected ${allowed.slice(0, -1).join(", ")} or ${allowed.at(-1)}, got ${JSON.stringify(value)}`
        })
      }
      // An unknown key of a sink is reported against the sink's keys and the runner's.
      const ownKeys = keysAt((shape ?? definition.config).ast, [])
      for (let i = before; i < problems.length; i++) {
        const p = problems[i]!
        if (p.message === "unknown key") {
          const key = p.path.slice(base.length + 1)
          const [hint] = Text.closest(
            key,
            [...runnerSinkKeys, ...ownKeys].filter((known) => known !== key)
          )
          const selector = literalKeyOf(definition.config, key)
          // A key of another shape than the one the entry names (`path` with `store: jsonl`).
          const owner =
            shape === undefined
              ? undefined
              : literals.find((l) => l.member !== shape && keysAt(l.member.ast, []).includes(key))
          const message =
            selector !== undefined
              ? `unknown key; did you mean "${selector}: ${key}"?`
              : owner !== undefined
                ? `only with ${owner.key}: ${String(owner.value)}`
                : hint !== undefined
                  ? `unknown key; did you mean "${hint}"?`
                  : `unknown key; the ${definition.type} sink takes ${[...new Set(ownKeys)].join(", ") || "no options of its own"} (and the runner's ${runnerSinkKeys.join(", ")})`
          problems[i] = { path: p.path, message }
        }
      }
      if (keys === undefined || problems.length > before) continue
      const patterns = [definition.events, file?.events, keys.events].filter(
        (p): p is ReadonlyArray<string> => p !== undefined
      )
      if (nothingPasses(patterns)) {
        const lists = [
          definition.events && `the ${definition.type} sink takes ${definition.events.join(", ")}`,
          file?.events && `events: ${file.events.join(", ")}`,
          keys.events && `${base}.events: ${keys.events.join(", ")}`
        ].filter(Boolean)
        problems.push({
          path: keys.events === undefined ? base : `${base}.events`,
          message: `no event type is in all of its lists (${lists.join("; ")}): the sink would get nothing`
        })
        continue
      }
      const batch = keys.batch ?? {}
      sinks.push({
        name,
        type: definition.type,
        definition,
        options: decoded,
        patterns,
        organizations: keys.organizations ?? file?.organizations,
        batch: {
          ...(batch.maxEvents === undefined ? {} : { maxEvents: numberOf(batch.maxEvents)! }),
          ...(batch.maxBytes === undefined ? {} : { maxBytes: numberOf(batch.maxBytes)! }),
          ...(batch.maxWait === undefined ? {} : { maxWait: Text.parseDuration(batch.maxWait)! })
        },
        retry: retrySettings(keys.retry),
        directory: options.baseDir
      })
    }
    if (problems.length > 0 || file === undefined) return yield* fail()

    const leaseTtl = ms(file.state?.leaseTtl, defaults.leaseTtl)
    const source: Source =
      file.source.type === "workos"
        ? {
            type: "workos",
            apiKey: file.source.apiKey ?? Redacted.make(envApiKey!),
            baseUrl: file.source.baseUrl ?? "https://api.workos.com",
            events: file.source.events,
            organization: file.source.organization,
            start: file.source.start ?? "latest",
            pollInterval: ms(file.source.pollInterval, defaults.pollInterval),
            pageSize: num(file.source.pageSize, defaults.pageSize)
          }
        : {
            type: "demo",
            rate: num(file.source.rate, defaults.demoRate),
            pollInterval: ms(file.source.pollInterval, 250)
          }
    return {
      path: options.file,
      source,
      state:
        file.state?.postgres !== undefined
          ? { type: "postgres", url: file.state.postgres, leaseTtl }
          : {
              type: "sqlite",
              path: Path.resolve(options.baseDir, file.state?.sqlite ?? defaults.statePath),
              leaseTtl
            },
      http,
      log: { level: file.log?.level ?? "info", format: file.log?.format ?? "auto" },
      shutdownTimeout: ms(file.shutdownTimeout, defaults.shutdownTimeout),
      sinks
    } satisfies RelayConfig
  })

/** Parses YAML or JSON text; a syntax error names the line and column. */
export const parse = (text: string, file: string): Effect.Effect<unknown, ConfigError> =>
  Effect.try({
    try: () => Yaml.parse(text, { prettyErrors: true, uniqueKeys: true }) as unknown,
    catch: (error) => {
      const e = error as Yaml.YAMLError
      const where =
        e.linePos?.[0] === undefined ? "" : `line ${e.linePos[0].line}, column ${e.linePos[0].col}`
      const first = String(e.message ?? error)
        .split("\n")[0]!
        .replace(/ at line \d+, column \d+:?$/, "")
      const line =
        e.linePos?.[0] === undefined ? "" : (text.split("\n")[e.linePos[0].line - 1] ?? "")
      return new ConfigError({
        file,
        problems: [{ path: where, message: `not valid YAML: ${first}${variableHint(line)}` }]
      })
    }
  })

/**
 * In `{ apiKey: ${KEY} }` YAML reads the variable's brace as the start of a map and
 * reports only that: say what to write instead.
 */
const variableHint = (line: string): string => {
  const variable = /(?:^|[^"'])(\$\{[^}]*\})/.exec(line)?.[1]
  return variable !== undefined && /[{[]/.test(line.replaceAll(variable, ""))
    ? ` (inside { } or [ ], put a variable in quotes: "${variable}")`
    : ""
}

/** Reads, parses and decodes a config file. */
export const load = (
  file: string,
  env?: Readonly<Record<string, string | undefined>>
): Effect.Effect<RelayConfig, ConfigError> =>
  Effect.gen(function* () {
    const text = yield* Effect.try({
      try: () => Fs.readFileSync(file, "utf8"),
      catch: (error) =>
        new ConfigError({
          file,
          problems: [
            {
              path: "",
              message:
                (error as any)?.code === "ENOENT"
                  ? "file not found (pass --config <file>; `workos-relay config schema` prints the format)"
                  : `cannot read the file: ${(error as Error).message}`
            }
          ]
        })
    })
    const document = yield* parse(text, file)
    return yield* decode(document, {
      file,
      baseDir: Path.dirname(Path.resolve(file)),
      ...(env === undefined ? {} : { env })
    })
  })

// ---------------------------------------------------------------------------
// JSON Schema of the whole file

const strict = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(strict)
  if (typeof node !== "object" || node === null) return node
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(node)) out[k] = strict(v)
  if (out.type === "object" && out.additionalProperties === true) out.additionalProperties = false
  return out
}

const omitSinks = <F extends { readonly sinks: unknown }>(fields: F): Omit<F, "sinks"> => {
  const { sinks: _, ...rest } = fields
  return rest
}

const jsonSchemaOf = (schema: Schema.Top): Record<string, unknown> => {
  const document = Schema.toJsonSchemaDocument(Schema.toCodecJson(schema as any) as any)
  return strict({
    ...document.schema,
    ...(Object.keys(document.definitions).length > 0 ? { $defs: document.definitions } : {})
  }) as Record<string, unknown>
}

/**
 * A JSON Schema (draft 2020-12) of the config file, one sink entry schema per known
 * definition (the runner's keys plus the sink's own options, selected by `type`).
 */
export const jsonSchema = (
  definitions: ReadonlyArray<Sink.Definition>
): Record<string, unknown> => {
  const root = jsonSchemaOf(Schema.Struct(omitSinks(File.fields)) as any) as any
  const runnerKeys = (jsonSchemaOf(SinkKeys) as any).properties
  // A `$ref` ("#/$defs/X") points into the root document, so every definition lives
  // there; a sink's own are named after its type, so two sinks cannot clash.
  const defs: Record<string, unknown> = { ...root.$defs }
  const entries = definitions.flatMap((definition) => {
    const prefix = `${definition.type}.`
    const { $defs: own$defs, ...own } = renameRefs(jsonSchemaOf(definition.config), prefix) as any
    for (const [name, def] of Object.entries(own$defs ?? {})) defs[prefix + name] = def
    // Options that are one of several shapes (the audit log's stores): an entry for each.
    const shapes: ReadonlyArray<any> = own.anyOf ?? [own]
    return shapes.map((shape) => ({
      type: "object",
      description: `A sink of type "${definition.type}"`,
      properties: {
        ...runnerKeys,
        ...(shape.properties ?? {}),
        type: { type: "string", enum: [definition.type] }
      },
      required: ["type", ...(shape.required ?? [])],
      additionalProperties: false
    }))
  })
  const custom = {
    type: "object",
    description: "A custom sink: `module` is a path relative to this file or a package name",
    properties: { ...runnerKeys, module: { type: "string" } },
    required: ["module"],
    additionalProperties: true
  }
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "workos-relay config file",
    ...root,
    properties: {
      ...root.properties,
      sinks: {
        type: "object",
        description: "Sinks by name",
        additionalProperties: {
          anyOf: [...entries, custom]
        }
      }
    },
    required: [...(root.required ?? []), "sinks"],
    ...(Object.keys(defs).length > 0 ? { $defs: defs } : {})
  }
}

/** The schema with every local `$ref` ("#/$defs/X") and `$defs` key given a prefix. */
const renameRefs = (node: unknown, prefix: string): unknown => {
  if (Array.isArray(node)) return node.map((item) => renameRefs(item, prefix))
  if (typeof node !== "object" || node === null) return node
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(node)) {
    if (k === "$ref" && typeof v === "string" && v.startsWith("#/$defs/"))
      out[k] = `#/$defs/${prefix}${v.slice("#/$defs/".length)}`
    else if (k === "$defs" && typeof v === "object" && v !== null)
      out[k] = Object.fromEntries(
        Object.entries(v).map(([name, def]) => [name, renameRefs(def, prefix)])
      )
    else out[k] = renameRefs(v, prefix)
  }
  return out
}

/** The embedded config of `workos-relay demo`. */
export const demo = (options: { readonly statePath: string; readonly rate: number }): unknown => ({
  source: { type: "demo", rate: options.rate },
  state: { sqlite: options.statePath },
  sinks: { console: { type: "console" } }
})

export const redactedForDisplay = (value: Redacted.Redacted<string>): string =>
  Redacted.isRedacted(value) ? "<redacted>" : String(value)
