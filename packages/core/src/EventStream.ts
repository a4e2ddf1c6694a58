/**
 * Every WorkOS event from a starting point on, as a `Stream`, each with the cursor
 * that resumes right after it.
 *
 * Pages are asked in creation order (`order=asc`, `after=<cursor>`). In follow mode,
 * once the stream has caught up it waits the poll interval and asks again from
 * the last cursor, so it never skips and never repeats an event. An event that
 * fails to decode is an element of the stream (with its cursor, so a consumer can
 * dead-letter it and move on), not a failure of the stream.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type * as Event from "./Event.ts"
import type * as EventList from "./EventList.ts"
import * as EventPattern from "./EventPattern.ts"
import { isObject } from "./internal/Check.ts"
import { WorkOS, type WorkOSError } from "./WorkOS.ts"

/**
 * Where the stream begins:
 * - `{ after: cursor }`: right after an event, as a saved cursor says;
 * - `"earliest"`: the oldest event WorkOS still keeps (about 30 days);
 * - `"latest"`: only events newer than the newest one now;
 * - `{ since: instant }`: events created at or after that instant.
 */
export type Start =
  | "earliest"
  | "latest"
  | { readonly after: string }
  | { readonly since: Date | string }

export interface Options<Ps extends ReadonlyArray<string> = ReadonlyArray<string>> {
  readonly start: Start
  /**
   * Event type patterns (`"dsync.user.*"`): only matching events are streamed. Sent
   * to WorkOS as the explicit list of known types they match, and checked again on
   * every event received. Without it (or with `"*"`) every event is streamed,
   * types the spec does not know yet included.
   */
  readonly events?: Ps | undefined
  /** Only events of this organization. */
  readonly organizationId?: string | undefined
  /** Keep polling once caught up (default `false`: the stream ends at the newest event). */
  readonly follow?: boolean | undefined
  /** How long to wait, once caught up, before asking again (default 5 s). */
  readonly pollInterval?: Duration.Input | undefined
  /** Events per request, 1 to 100 (default 100). */
  readonly pageSize?: number | undefined
}

/** An event and the cursor that resumes right after it. */
export interface Received<E = Event.Any> {
  readonly _tag: "Event"
  readonly cursor: string
  readonly event: E
}

/**
 * An event that failed to decode. Its cursor resumes right after it, so a consumer
 * can dead-letter it and checkpoint past it. An event without an id cannot be
 * resumed after: it carries the cursor of the event before it (resuming there
 * yields it again), or `undefined` when it came first.
 */
export interface Undecodable {
  readonly _tag: "Undecodable"
  readonly cursor: string | undefined
  readonly error: Event.EventDecodeError
}

export type Element<E = Event.Any> = Received<E> | Undecodable

/** The patterns select no known type (a typo); the stream fails at once instead of streaming nothing. */
export { UnknownPatternError } from "./EventPattern.ts"

/** Where the stream is between pages. */
interface State {
  /** The last cursor: the next page starts right after it. */
  readonly cursor: string | undefined
  /** Whether the last page reached the end: the next request waits the poll interval first. */
  readonly caughtUp: boolean
  /** The ids of the last page, to drop an event a server sends twice. */
  readonly recent: ReadonlySet<string>
}

const DEFAULT_POLL_INTERVAL = "5 seconds"

/** The stream of events from `options.start` on; see the module's description. */
export const make = <const Ps extends ReadonlyArray<string> = ReadonlyArray<string>>(
  options: Options<Ps>
): Stream.Stream<
  Element<EventPattern.Matching<Ps>>,
  WorkOSError | EventPattern.UnknownPatternError,
  WorkOS
> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const workos = yield* WorkOS
      const patterns = options.events
      const everything = patterns === undefined || patterns.includes("*")
      if (!everything) {
        const valid = EventPattern.validate(patterns)
        if (Result.isFailure(valid)) return yield* Effect.fail(valid.failure)
      }
      const pageSize = options.pageSize ?? 100
      if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100) {
        return yield* Effect.die(new RangeError(`pageSize must be 1 to 100, got ${pageSize}`))
      }
      const types = everything ? undefined : EventPattern.expand(patterns)
      const wanted = keep(everything ? undefined : patterns, options.organizationId)
      const pollInterval = options.pollInterval ?? DEFAULT_POLL_INTERVAL
      const follow = options.follow === true
      const start = options.start
      const since =
        typeof start === "object" && "since" in start
          ? start.since instanceof Date
            ? start.since.toISOString()
            : start.since
          : undefined

      const initial: State = {
        cursor:
          start === "latest"
            ? yield* newestId(workos)
            : typeof start === "object" && "after" in start
              ? start.after
              : undefined,
        caughtUp: false,
        recent: new Set()
      }

      const step = (state: State) =>
        Effect.gen(function* () {
          if (state.caughtUp) yield* Effect.sleep(pollInterval)
          const page = yield* workos.listEvents({
            order: "asc",
            limit: pageSize,
            after: state.cursor,
            // Once there is a cursor it alone says where to go on.
            rangeStart: state.cursor === undefined ? since : undefined,
            events: types,
            organizationId: options.organizationId
          })
          const { elements, next } = read(page, state, wanted)
          return [
            elements as ReadonlyArray<Element<EventPattern.Matching<Ps>>>,
            next.caughtUp && !follow ? Option.none() : Option.some(next)
          ] as const
        })

      return Stream.paginate(initial, step)
    })
  )

/**
 * Reads one page into elements and the state after it.
 *
 * The next cursor is the page's `list_metadata.after` when it has one (it may lie
 * past the last event returned, when WorkOS filtered the rest out), else the last
 * event's id (the end of the list: the next poll starts after it), else the
 * cursor as it was. A page that moves the cursor nowhere has caught up, whatever
 * its `after` says, so a server that keeps answering the same page cannot spin.
 */
const read = (
  page: EventList.EventList,
  state: State,
  wanted: (type: string | undefined, raw: unknown) => boolean
): { elements: Array<Element>; next: State } => {
  const elements: Array<Element> = []
  const ids = new Set<string>()
  let cursor = state.cursor
  for (const result of page.data) {
    if (Result.isSuccess(result)) {
      const event = result.success
      cursor = event.id
      ids.add(event.id)
      if (state.recent.has(event.id) || event.id === state.cursor) continue
      if (wanted(event.event, event)) elements.push({ _tag: "Event", cursor, event })
    } else {
      const error = result.failure
      if (error.id !== undefined) {
        cursor = error.id
        ids.add(error.id)
        if (state.recent.has(error.id) || error.id === state.cursor) continue
      }
      if (wanted(error.type, error.raw)) elements.push({ _tag: "Undecodable", cursor, error })
    }
  }
  const after = page.list_metadata.after
  const nextCursor = after ?? cursor
  const moved = nextCursor !== state.cursor
  return {
    elements,
    next: { cursor: nextCursor, caughtUp: after === null || !moved, recent: ids }
  }
}

/**
 * The check run on every event received, since a server may ignore a filter: its
 * type against the patterns, and its organization when the payload names one.
 * An event whose type or organization cannot be told is kept: it is never
 * dropped for want of evidence.
 */
const keep = (
  patterns: ReadonlyArray<string> | undefined,
  organizationId: string | undefined
): ((type: string | undefined, raw: unknown) => boolean) => {
  const selected =
    patterns === undefined ? undefined : new Set<string>(EventPattern.expand(patterns))
  return (type, raw) => {
    if (selected !== undefined && type !== undefined && !selected.has(type)) return false
    if (organizationId !== undefined && isObject(raw) && isObject(raw.data)) {
      const named = raw.data.organization_id
      if (typeof named === "string" && named !== organizationId) return false
    }
    return true
  }
}

/** The id of the newest event now, if there is one: `"latest"` starts right after it. */
const newestId = (workos: WorkOS["Service"]) =>
  // Unfiltered: the newest event of any type marks "now" as well as the newest match.
  Effect.map(workos.listEvents({ order: "desc", limit: 1 }), (page) => {
    const newest = page.data[0]
    if (newest === undefined) return undefined
    return Result.isSuccess(newest) ? newest.success.id : newest.failure.id
  })
