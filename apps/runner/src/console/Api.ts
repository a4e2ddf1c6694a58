/**
 * The console's JSON API, as Schemas: the contract between the runner and the pages
 * (and anything else that reads it). Every answer is encoded through these.
 */
import * as Schema from "effect/Schema"

export const SinkState = Schema.Literals([
  "starting",
  "running",
  "detached",
  "failed",
  "stopped",
  "interrupted"
])

export const SinkOverview = Schema.Struct({
  name: Schema.String,
  state: SinkState,
  delivered: Schema.Number,
  deadLettered: Schema.Number,
  /** Dead letters of the sink in the store now. */
  deadLetters: Schema.Number,
  filtered: Schema.Number,
  retried: Schema.Number,
  lagEvents: Schema.Number,
  lagMs: Schema.Number,
  /** Share of the source's retention the unread events have used (0 caught up, past 1 lost). */
  retentionUsed: Schema.Number,
  cursor: Schema.NullOr(Schema.String),
  /** When the checkpoint last moved (ms since the epoch), null before the first. */
  checkpointAt: Schema.NullOr(Schema.Number),
  /** The last failure, as the sink reported it. */
  error: Schema.NullOr(Schema.String),
  /** Events done with per second (delivered, dead-lettered or filtered), oldest first. */
  rate: Schema.Array(Schema.Number)
})
export type SinkOverview = typeof SinkOverview.Type

/** The API key's request budget: requests a minute lately, against its ceiling. */
export const BudgetUse = Schema.Struct({
  perMinute: Schema.Number,
  maxPerMinute: Schema.Number,
  /** 429s WorkOS answered since the start. */
  throttled: Schema.Number
})
export type BudgetUse = typeof BudgetUse.Type

/** Cluster mode: the runners, which unit each runs, and the lag of the units running here. */
export const ClusterOverview = Schema.Struct({
  /** This runner's address. */
  runner: Schema.String,
  lockExpiry: Schema.Number,
  runners: Schema.Array(
    Schema.Struct({
      address: Schema.String,
      state: Schema.Literals(["healthy", "unhealthy", "gone"]),
      heartbeatAgeMs: Schema.Number,
      units: Schema.Array(Schema.String)
    })
  ),
  units: Schema.Array(
    Schema.Struct({
      name: Schema.String,
      /** The runner that claimed it last (its fencing token's holder). */
      holder: Schema.String,
      token: Schema.Number,
      /** Whether that runner is alive: the unit runs there. */
      running: Schema.Boolean,
      /** Its worst lane's lag; null when it runs on another runner (see that runner's console). */
      lagEvents: Schema.NullOr(Schema.Number),
      lagMs: Schema.NullOr(Schema.Number)
    })
  )
})
export type ClusterOverview = typeof ClusterOverview.Type

export const Overview = Schema.Struct({
  now: Schema.Number,
  startedAt: Schema.Number,
  /** Seconds between two `rate` samples. */
  rateInterval: Schema.Number,
  source: Schema.Struct({
    fetched: Schema.Number,
    leaseHeld: Schema.Boolean,
    ready: Schema.Boolean,
    gaps: Schema.Number,
    lastGap: Schema.NullOr(Schema.String),
    specMismatches: Schema.Record(Schema.String, Schema.Number),
    /** The highest share of retention any sink has used. */
    retentionUsed: Schema.Number,
    /** Null when the source reads no API (not yet open). */
    budget: Schema.NullOr(BudgetUse)
  }),
  sinks: Schema.Array(SinkOverview),
  /** Cluster mode only; `sinks` are then the lanes of the units running here. */
  cluster: Schema.optionalKey(ClusterOverview)
})
export type Overview = typeof Overview.Type

export const DeadLetter = Schema.Struct({
  id: Schema.Number,
  sink: Schema.String,
  eventId: Schema.String,
  eventType: Schema.String,
  /** The event as stored (JSON text, or what WorkOS sent when it was not JSON). */
  event: Schema.String,
  error: Schema.String,
  attempts: Schema.Number,
  firstFailure: Schema.Number,
  lastFailure: Schema.Number
})
export type DeadLetter = typeof DeadLetter.Type

export const DeadLetters = Schema.Struct({ deadLetters: Schema.Array(DeadLetter) })

/** The body of a retry or a drop: which dead letters. */
export const Ids = Schema.Struct({
  ids: Schema.Array(Schema.Int.check(Schema.isGreaterThan(0))).check(Schema.isMinLength(1))
})

export const RetryResult = Schema.Struct({
  outcomes: Schema.Array(
    Schema.Struct({
      id: Schema.Number,
      delivered: Schema.Boolean,
      reason: Schema.optionalKey(Schema.String)
    })
  )
})
export type RetryResult = typeof RetryResult.Type

export const DropResult = Schema.Struct({ dropped: Schema.Number })

export const ApiError = Schema.Struct({ error: Schema.String })

/** One event of the tap (`GET tap?sink=&events=`, server-sent events, one per `data:`). */
export const TapEvent = Schema.Struct({
  id: Schema.String,
  type: Schema.String,
  createdAt: Schema.String,
  organizationId: Schema.NullOr(Schema.String),
  /** The event as WorkOS sent it. */
  event: Schema.Unknown
})
export type TapEvent = typeof TapEvent.Type

/** The event catalogue: every known type, who receives it under this config, an example. */
export const Catalogue = Schema.Struct({
  types: Schema.Array(
    Schema.Struct({
      type: Schema.String,
      /** Whether the runner asks WorkOS for it (some sink takes it, `source.events` allows it). */
      read: Schema.Boolean,
      /** The sinks whose filters take it (of the organizations listed, for `organizations`). */
      sinks: Schema.Array(
        Schema.Struct({
          name: Schema.String,
          organizations: Schema.NullOr(Schema.Array(Schema.String))
        })
      ),
      /** An example event of the type, from WorkOS's spec. */
      example: Schema.Unknown
    })
  )
})
export type Catalogue = typeof Catalogue.Type

// ---------------------------------------------------------------------------
// The audit log (`GET audit`, `GET audit/query`, `POST audit/verify`)

/** The audit-log sinks of the config, and whether the audit-log package is installed. */
export const AuditSinks = Schema.Struct({
  /** Whether `@workos-relay/sink-audit-log` can be loaded. */
  installed: Schema.Boolean,
  /** What to do to have an audit log, for a page to show when there is none. */
  help: Schema.String,
  sinks: Schema.Array(
    Schema.Struct({
      name: Schema.String,
      store: Schema.Literals(["sqlite", "postgres", "jsonl"]),
      /** The file, folder or database (a URL without credentials). */
      where: Schema.String
    })
  )
})
export type AuditSinks = typeof AuditSinks.Type

/**
 * The query parameters of `GET audit/query`, as the CLI's `audit query` flags: `type`
 * (repeat it or separate with commas; `*` is any run of characters), `since`/`until`
 * (ISO-8601 or a duration ago, `24h`), `mismatched=true`, `limit` (1 to 1000, 100 by
 * default), `before` (the `next` cursor of the page before).
 */
export const AuditQueryParams = Schema.Struct({
  sink: Schema.optionalKey(Schema.String),
  type: Schema.optionalKey(Schema.Array(Schema.String)),
  org: Schema.optionalKey(Schema.String),
  actor: Schema.optionalKey(Schema.String),
  since: Schema.optionalKey(Schema.String),
  until: Schema.optionalKey(Schema.String),
  mismatched: Schema.optionalKey(Schema.Literals(["true", "false"])),
  limit: Schema.optionalKey(Schema.String),
  before: Schema.optionalKey(Schema.String)
})
export type AuditQueryParams = typeof AuditQueryParams.Type

/** A record as the store keeps it (see the audit-log package's README). */
export const AuditRecord = Schema.Struct({
  seq: Schema.Number,
  id: Schema.String,
  type: Schema.String,
  created_at: Schema.String,
  organization_id: Schema.NullOr(Schema.String),
  actor: Schema.NullOr(
    Schema.Struct({
      id: Schema.NullOr(Schema.String),
      name: Schema.NullOr(Schema.String),
      source: Schema.NullOr(Schema.String)
    })
  ),
  targets: Schema.Array(Schema.Struct({ type: Schema.String, id: Schema.String })),
  ip_address: Schema.NullOr(Schema.String),
  user_agent: Schema.NullOr(Schema.String),
  /** The event as WorkOS sent it. */
  event: Schema.Unknown,
  schema_mismatch: Schema.optionalKey(Schema.String),
  prev_hash: Schema.String,
  hash: Schema.String
})
export type AuditRecord = typeof AuditRecord.Type

/** One page of a query, newest first; `next` is the `before` of the page after (null: none). */
export const AuditPage = Schema.Struct({
  sink: Schema.String,
  where: Schema.String,
  records: Schema.Array(AuditRecord),
  next: Schema.NullOr(Schema.String)
})
export type AuditPage = typeof AuditPage.Type

/** The body of `POST audit/verify`: which sink (may be left out when there is one). */
export const AuditVerifyRequest = Schema.Struct({ sink: Schema.optionalKey(Schema.String) })

/** What the chain walk found: OK with counts, or the first broken record and why. */
export const AuditVerify = Schema.Struct({
  sink: Schema.String,
  where: Schema.String,
  ok: Schema.Boolean,
  /** Records checked. */
  records: Schema.Number,
  /** The seq of the last record retention deleted (0: the chain is whole from the start). */
  anchorSeq: Schema.Number,
  headHash: Schema.String,
  /** Records appended after the head verify began at (JSONL), not checked. */
  newer: Schema.NullOr(Schema.Number),
  problem: Schema.NullOr(
    Schema.Struct({
      kind: Schema.String,
      seq: Schema.NullOr(Schema.Number),
      id: Schema.NullOr(Schema.String),
      message: Schema.String
    })
  ),
  /** The result as `workos-relay audit verify` prints it. */
  summary: Schema.String
})
export type AuditVerify = typeof AuditVerify.Type
