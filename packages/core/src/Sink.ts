/**
 * The contract between the runner's pipeline and a sink.
 *
 * A sink is small on purpose: it turns a batch of events into one delivery and says,
 * per event, what became of it. The pipeline owns everything else: filtering,
 * batching, retries with backoff, dead letters, ordering and checkpoints.
 *
 * A sink package (or a user's own module) exports a `Definition`: its `type` name,
 * its config `Schema`, and how to make the sink from a decoded config.
 *
 * Typed or raw: strict types for code, whole records for archives. WorkOS sometimes
 * sends an event of a known type whose payload breaks the spec (a field left out, an
 * `object` it does not list). A typed sink (the default) never sees one: it is
 * dead-lettered for it, with where and why, since code written against the typed
 * payload would misread it. A sink that forwards or stores events as WorkOS sent them
 * (an event bus, an archive, a webhook) says `raw: true` in its definition and gets
 * such an event in its batch like any other: the very object WorkOS sent, its JSON
 * unchanged, marked with where it breaks the spec (`mismatchOf`).
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Event from "./Event.ts"
import type { Matching } from "./EventPattern.ts"

// ---------------------------------------------------------------------------
// What became of one event

/** The event reached its destination. */
export interface Delivered {
  readonly _tag: "Delivered"
}

/** The event did not get through this time; try again later (after `after`, when the destination said). */
export interface Retry {
  readonly _tag: "Retry"
  readonly reason: string
  readonly after?: Duration.Duration
}

/** The destination refused the event for good (too large, malformed, ...): dead-letter it with the reason. */
export interface Rejected {
  readonly _tag: "Rejected"
  readonly reason: string
}

export type Outcome = Delivered | Retry | Rejected

export const delivered: Delivered = { _tag: "Delivered" }

export const retry = (reason: string, after?: Duration.Duration): Retry =>
  after === undefined ? { _tag: "Retry", reason } : { _tag: "Retry", reason, after }

export const rejected = (reason: string): Rejected => ({ _tag: "Rejected", reason })

// ---------------------------------------------------------------------------
// When a whole delivery fails

/** The destination could not take the batch now (throttled, 5xx, timeout): the pipeline retries all of it. */
export class SinkUnavailable extends Data.TaggedError("SinkUnavailable")<{
  readonly reason: string
  /** How long the destination asked us to wait, when it said. */
  readonly retryAfter?: Duration.Duration
}> {
  override get message(): string {
    return this.reason
  }
}

/**
 * The sink cannot work until a person fixes something (revoked token, missing
 * permission): the pipeline stops this sink, with this reason, and the others go on.
 */
export class SinkFatal extends Data.TaggedError("SinkFatal")<{
  readonly reason: string
}> {
  override get message(): string {
    return this.reason
  }
}

// ---------------------------------------------------------------------------
// The sink

/** How the pipeline groups events for one `deliver` call. */
export interface BatchSettings {
  /** At most this many events per batch. */
  readonly maxEvents: number
  /** At most this many bytes of event JSON per batch, when the destination has a size limit. */
  readonly maxBytes?: number
  /**
   * How long a batch may wait to fill before it is delivered anyway. The runner does
   * not wait once its reader has caught up: nothing more comes before the next poll.
   */
  readonly maxWait: Duration.Input
}

/**
 * A sink: `deliver` gets a batch of events in event order and returns one
 * `Outcome` per event, in the same order.
 */
export interface Sink<E extends Event.Any = Event.Any> {
  /** The sink's preferred batching; the user's config may lower it. */
  readonly batch: BatchSettings
  readonly deliver: (
    batch: ReadonlyArray<E>
  ) => Effect.Effect<ReadonlyArray<Outcome>, SinkUnavailable | SinkFatal>
  /**
   * Reaches the destination without sending it anything (Slack's `auth.test`, say),
   * failing with what went wrong. `workos-relay validate --check-connections` runs
   * it; a sink without one is only made.
   */
  readonly check?: Effect.Effect<void, SinkUnavailable | SinkFatal>
}

/** What a sink's `make` learns about where it runs. */
export interface Context {
  /** The sink's name in the config file (`sinks.<name>`), for logs and errors. */
  readonly name: string
  /**
   * Made only to be checked (`workos-relay validate --check-connections`): nothing
   * will be delivered, so the sink should change nothing at its destination (no
   * retention run, say).
   */
  readonly checkOnly?: boolean | undefined
  /**
   * The folder of the config file the sink is configured in: a relative path in the
   * sink's options is relative to it, as the runner's own paths are (to the working
   * directory when undefined).
   */
  readonly directory?: string | undefined
  /**
   * The WorkOS API the relay reads (by `run`), for a sink that calls it itself, such as
   * the mirror's scheduled reconcile; its requests share the key's budget in the process
   * (`RequestBudget.forKey`) at `maxRequestsPerMinute`. Undefined elsewhere.
   */
  readonly workos?:
    | {
        readonly apiKey: Redacted.Redacted<string>
        readonly baseUrl: string
        readonly maxRequestsPerMinute?: number | undefined
      }
    | undefined
}

/**
 * A sink type: its name in config files, the events it can handle, the Schema of
 * its options, and how to make a sink from decoded options. Resources it opens
 * belong to the `Scope` and are closed when the runner stops.
 */
export interface Definition<
  Config = any,
  Ps extends ReadonlyArray<string> = ReadonlyArray<string>
> {
  /** The `type:` that selects this sink in a config file (`slack`, `eventbridge`, ...). */
  readonly type: string
  /**
   * Event type patterns this sink handles; every event when absent. A config
   * file's `events:` can narrow them further, never widen them.
   */
  readonly events?: Ps
  /**
   * Whether the sink takes raw events (default `false`: typed; see the module's
   * description). A raw sink also gets an event whose payload breaks the spec, as
   * WorkOS sent it, where a typed one has it dead-lettered. Its `deliver` still sees
   * `Event.Any` (or the types its `events` select), but must cope with such an event:
   * only its `id` and `event` are sure to be strings; every other field, `data` and
   * `created_at` included, may be missing or of another type than the spec says.
   * `mismatchOf(event)` tells such an event apart, and where it breaks the spec.
   */
  readonly raw?: boolean | undefined
  /** The sink's own options (every key of its config entry but the runner's: type, events, batch, retry). */
  readonly config: Schema.Codec<Config, unknown>
  readonly make: (
    config: Config,
    context: Context
    // Only `events` decides the patterns; `make` is typed by them, never the reverse.
  ) => Effect.Effect<Sink<Matching<NoInfer<Ps>>>, SinkFatal, Scope.Scope>
}

// ---------------------------------------------------------------------------
// Events that break the spec

/** Where an event breaks the spec, and how: the first problem `Event.decode` found. */
export interface Mismatch {
  /** Where in the event, as `data.resource_type_slug` (empty for the event itself). */
  readonly path: string
  /** What is wrong there (`required field is missing`). */
  readonly reason: string
}

/**
 * The marks, by event object. Kept on `globalThis` under a registered symbol, so that
 * a sink loaded with a copy of this package of its own (a custom sink's module with
 * its own `node_modules`) reads the marks the runner's copy set.
 */
const registry = Symbol.for("@workos-relay/core/Sink/mismatches")
const shared = globalThis as { [registry]?: WeakMap<object, Mismatch> }
const mismatches: WeakMap<object, Mismatch> = shared[registry] ?? new WeakMap()
shared[registry] = mismatches

/**
 * The event a decode error is about, as a raw sink gets it: the very object WorkOS
 * sent (not a copy: it serialises to the same JSON), marked with the error's path and
 * reason for `mismatchOf`. Undefined when the error names no id or no type: that is
 * not an event a sink can take, and it is dead-lettered for every sink.
 */
export const mismatched = (error: Event.EventDecodeError): Event.Any | undefined => {
  const raw = error.raw
  if (error.id === undefined || error.type === undefined) return undefined
  if (typeof raw !== "object" || raw === null) return undefined
  if (!mismatches.has(raw)) mismatches.set(raw, { path: error.path, reason: error.reason })
  return raw as Event.Any
}

/**
 * Where an event a raw sink got breaks the spec, or undefined when it matches it (as
 * every event a typed sink gets does). The event itself carries nothing of it: what
 * a sink forwards is exactly what WorkOS sent.
 */
export const mismatchOf = (event: Event.Any): Mismatch | undefined => mismatches.get(event)

/** A mismatch as one line: `data.resource_type_slug: required field is missing`. */
export const formatMismatch = (mismatch: Mismatch): string =>
  mismatch.path === "" ? mismatch.reason : `${mismatch.path}: ${mismatch.reason}`

/**
 * Defines a sink type. With literal `events` patterns, `deliver` receives exactly
 * the events they select:
 *
 * ```ts
 * export const definition = Sink.define({
 *   type: "user-audit",
 *   events: ["dsync.user.*"],
 *   config: Schema.Struct({ url: Schema.String }),
 *   make: (config) =>
 *     Effect.succeed({
 *       batch: { maxEvents: 50, maxWait: "1 second" },
 *       // batch: ReadonlyArray<Event.Of<"dsync.user.created" | "dsync.user.deleted" | "dsync.user.updated">>
 *       deliver: (batch) => Effect.succeed(batch.map(() => Sink.delivered))
 *     })
 * })
 * ```
 *
 * A sink that forwards or stores events as WorkOS sent them adds `raw: true` (see
 * `Definition.raw`).
 */
export const define = <Config, const Ps extends ReadonlyArray<string> = ReadonlyArray<string>>(
  definition: Definition<Config, Ps>
): Definition<Config, Ps> => definition
