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
  sinks: Schema.Array(SinkOverview)
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
