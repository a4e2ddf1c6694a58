/**
 * The config file's Schema (`File`, and `SinkKeys`, the runner's keys of a sink
 * entry), and the config it decodes to (`RelayConfig`) with the defaults it fills in.
 *
 * A sink entry mixes the runner's keys (type, module, events, organizations, batch,
 * retry) with the sink's own options, which its definition's `config` Schema decodes.
 */
import { Event, type Sink } from "@workos-relay/core"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { Settings as WebhookSettings } from "../webhooks/Ingress.ts"
import { Cluster, type ClusterSettings } from "./Cluster.ts"
import { Console, type ConsoleSettings } from "./Console.ts"
import { type OtlpSettings, Telemetry } from "./Telemetry.ts"
import {
  HttpUrl,
  LeaseTtl,
  MaxWait,
  NumberInput,
  Patterns,
  PollInterval,
  PositiveDuration,
  PositiveInt,
  PostgresUrl
} from "./Values.ts"
import { Webhooks } from "./Webhooks.ts"

// ---------------------------------------------------------------------------
// The file

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
  pageSize: Schema.optionalKey(NumberInput({ min: 1, max: 100, integer: true })),
  reReadWindow: Schema.optionalKey(
    MaxWait.annotate({
      description:
        "How far back each poll reads again, for events WorkOS makes visible late with an older id (default 10s; 0s: off)"
    })
  ),
  retention: Schema.optionalKey(
    PositiveDuration.annotate({
      description:
        "How long WorkOS keeps events (default 30d): warnings as a sink's unread events near it, a gap reported past it"
    })
  ),
  onGap: Schema.optionalKey(
    Schema.Literals(["continue", "stop"]).annotate({
      description:
        "When events may have been lost (a cursor older than retention): continue from the oldest event WorkOS keeps (default), or stop the run"
    })
  ),
  maxRequestsPerMinute: Schema.optionalKey(
    NumberInput({ min: 1, integer: true }).annotate({
      description:
        "Requests a minute to WorkOS at most, shared by everything in the runner using this key (default 4800 of WorkOS's 6000); a 429 slows it down"
    })
  ),
  catchUp: Schema.optionalKey(
    Schema.Struct({
      enabled: Schema.optionalKey(Schema.Boolean),
      minBehind: Schema.optionalKey(PositiveDuration),
      minEvents: Schema.optionalKey(NumberInput({ min: 0, integer: true })),
      behindEvents: Schema.optionalKey(NumberInput({ min: 0, integer: true })),
      slices: Schema.optionalKey(NumberInput({ min: 1, max: 64, integer: true }))
    }).annotate({
      description:
        "Parallel catch-up when a reading is far behind: time slices read at once within the request budget, handed on in order (default on: 10m behind and about 5000 events ahead, or 10000 events behind however recent, 16 slices)"
    })
  )
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
  retry: Schema.optionalKey(Retry),
  sources: Schema.optionalKey(
    Schema.Array(Schema.String).annotate({
      description: "The sources (names under sources:) whose events the sink takes; default: all"
    })
  )
})
export const runnerSinkKeys = [
  "type",
  "module",
  "events",
  "organizations",
  "batch",
  "retry",
  "sources"
]

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
  source: Schema.optionalKey(
    Schema.Union([WorkOSSource, DemoSource]).annotate({
      description: "The one source (named default); or several under sources:"
    })
  ),
  sources: Schema.optionalKey(
    Schema.Record(Schema.String, Schema.Union([WorkOSSource, DemoSource])).annotate({
      description:
        "Several sources by name ([a-z][a-z0-9-]*), each a WorkOS environment with its own key, filters, start and budget; instead of source:"
    })
  ),
  state: Schema.optionalKey(State),
  events: Schema.optionalKey(Patterns),
  organizations: Schema.optionalKey(Schema.Array(Event.OrganizationId)),
  http: Schema.optionalKey(Http),
  webhooks: Schema.optionalKey(Webhooks),
  console: Schema.optionalKey(Console),
  cluster: Schema.optionalKey(Cluster),
  log: Schema.optionalKey(Log),
  telemetry: Schema.optionalKey(Telemetry),
  shutdownTimeout: Schema.optionalKey(PositiveDuration),
  sinks: Schema.Record(Schema.String, Schema.Unknown)
})
export type FileType = typeof File.Type

/** The schema of each source type, for problems worded by type. */
export const sourceTypes = { workos: WorkOSSource, demo: DemoSource } as const

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
      readonly reReadWindow: number
      readonly retention: number
      readonly onGap: "continue" | "stop"
      readonly maxRequestsPerMinute: number
      readonly catchUp: CatchUpSettings
    }
  | { readonly type: "demo"; readonly rate: number; readonly pollInterval: number }

/** A source of the config with its name (`default` for a file's `source:`). */
export type NamedSource = Source & { readonly name: string }

/** The name of a file's one `source:`. */
export const defaultSourceName = "default"

/** A source name: lower case, digits and dashes, as metric labels and logs show it. */
export const sourceNamePattern = /^[a-z][a-z0-9-]{0,62}$/

export interface CatchUpSettings {
  readonly enabled: boolean
  readonly minBehind: number
  readonly minEvents: number
  /** Events behind (judged from two full pages in a row) that start a catch-up however recent; 0: by time only. */
  readonly behindEvents: number
  readonly slices: number
}

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
  /** The names of the sources the sink takes (undefined: every source). */
  readonly sources?: ReadonlyArray<string> | undefined
}

export interface RelayConfig {
  /** The file it came from; undefined for embedded configs (demo). */
  readonly path: string | undefined
  /** The first source (a file's one `source:`); see `sourcesOf` for them all. */
  readonly source: Source
  /** Every source by name (undefined: `source` alone, named `default`). */
  readonly sources?: ReadonlyArray<NamedSource> | undefined
  readonly state: State
  readonly http: { readonly host: string; readonly port: number } | undefined
  /** The webhook doorbell, on the HTTP server (absent: none). */
  readonly webhooks?: WebhookSettings | undefined
  /** The operator console, on the HTTP server (absent: none). */
  readonly console?: ConsoleSettings | undefined
  /** Cluster mode: the units run on several runners (absent: the lease, one runner). */
  readonly cluster?: ClusterSettings | undefined
  readonly log: { readonly level: string; readonly format: "auto" | "json" | "logfmt" }
  /** OpenTelemetry export (from `telemetry.otlp` or `OTEL_*`; absent: none). */
  readonly otlp?: OtlpSettings | undefined
  readonly shutdownTimeout: number
  readonly sinks: ReadonlyArray<SinkConfig>
}

/** Every source of a config, each with its name. */
export const sourcesOf = (
  config: Pick<RelayConfig, "source" | "sources">
): ReadonlyArray<NamedSource> => config.sources ?? [{ ...config.source, name: defaultSourceName }]

/** The sources a sink takes, in the config's order. */
export const sourcesOfSink = (
  config: Pick<RelayConfig, "source" | "sources">,
  sink: Pick<SinkConfig, "sources">
): ReadonlyArray<NamedSource> =>
  sourcesOf(config).filter((s) => sink.sources === undefined || sink.sources.includes(s.name))

export const defaults = {
  statePath: "./.workos-relay/state.db",
  leaseTtl: 15_000,
  pollInterval: 5_000,
  pageSize: 100,
  reReadWindow: 10_000,
  maxRequestsPerMinute: 4_800,
  catchUp: {
    enabled: true,
    minBehind: 600_000,
    minEvents: 5_000,
    behindEvents: 10_000,
    slices: 16
  },
  retention: 30 * 24 * 60 * 60 * 1000,
  demoRate: 4,
  shutdownTimeout: 30_000,
  retry: { initialDelay: 500, maxDelay: 60_000, maxDuration: 3_600_000 }
} as const

/** A secret of the config (the API key, a Postgres URL) as it may be shown. */
export const redactedForDisplay = (value: Redacted.Redacted<string>): string =>
  Redacted.isRedacted(value) ? "<redacted>" : String(value)
