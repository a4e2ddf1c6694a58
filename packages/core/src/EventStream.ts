/**
 * Every WorkOS event from a starting point on, as a `Stream`, each with the cursor
 * that resumes right after it.
 *
 * Pages are asked in creation order (`order=asc`, `after=<cursor>`). In follow mode,
 * once the stream has caught up it waits the poll interval and asks again. An event
 * that fails to decode is an element of the stream (with its cursor, so a consumer
 * can dead-letter it and move on), not a failure of the stream.
 *
 * The server is not trusted (see `internal/Position.ts`): every filter asked of it
 * (types, organization, `since`) is checked again here; the cursor never moves
 * backwards; a page served twice repeats nothing; each poll reads the last
 * `reReadWindow` again, so an event committed late with an older id is delivered
 * (once); `latest` needs no request (it is the time the stream starts); and a
 * cursor older than `retention` is reported as a possible gap.
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type * as Event from "./Event.ts"
import type * as EventList from "./EventList.ts"
import * as EventPattern from "./EventPattern.ts"
import { isObject } from "./internal/Check.ts"
import { timeOf } from "./internal/DateTime.ts"
import { type Anomaly, idTime, Position, type Seen } from "./internal/Position.ts"
import { WorkOS, type WorkOSError } from "./WorkOS.ts"

/**
 * Where the stream begins:
 * - `{ after: cursor }`: right after an event, as a saved cursor says;
 * - `"earliest"`: the oldest event WorkOS still keeps (about 30 days);
 * - `"latest"`: only events created from now on (the time the stream starts; no
 *   request is needed, so no server's notion of "newest" is trusted);
 * - `{ since: instant }`: events created at or after that instant.
 *
 * A cursor may also carry the creation time of its event (`createdAt`), which the
 * re-read window and the retention check start from; without it, the time in a
 * ULID-shaped id is used.
 */
export type Start =
  | "earliest"
  | "latest"
  | { readonly after: string; readonly createdAt?: string | undefined }
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
  /**
   * Asks again before the poll interval is up: once caught up, the stream waits for
   * the interval or for this effect, whichever completes first (run afresh at each
   * wait). A doorbell (a webhook said "something happened"); it never supplies events.
   */
  readonly wake?: Effect.Effect<void> | undefined
  /**
   * Called when a following stream has caught up: the page just read was the last
   * there is for now, and the stream waits for the poll interval (or `wake`). It gets
   * the cursor of the last element handed on (that page's, or an earlier one when it
   * brought nothing new), so a consumer can tell once it has that element: then
   * nothing more comes before the next poll (a batch need not wait for more).
   */
  readonly onCaughtUp?: ((cursor: string | undefined) => void) | undefined
  /** Events per request, 1 to 100 (default 100). */
  readonly pageSize?: number | undefined
  /**
   * How far back each poll reads again, for events committed late with an older id
   * (default 10 s: WorkOS holds events back from cursor reads for a few seconds).
   * `0` reads on from the cursor only.
   */
  readonly reReadWindow?: Duration.Input | undefined
  /** How long WorkOS keeps events (default 30 days): a cursor older than that may have lost some. */
  readonly retention?: Duration.Input | undefined
  /** Told of each possible gap, also one the stream then stops at (default: a warning in the log, when going on). */
  readonly onGap?: ((gap: Gap) => Effect.Effect<void>) | undefined
  /** Fail with `GapError` at a possible gap instead of going on (default `false`). */
  readonly stopAtGap?: boolean | undefined
}

/**
 * Events that may be lost for good: created after `from` and before `to` (ms since
 * the epoch; `to` undefined: up to the first event read), because the cursor the
 * stream resumed from is older than WorkOS keeps events.
 */
export interface Gap {
  readonly from: number
  readonly to: number | undefined
  readonly cursor: string
  readonly reason: string
}

/** The stream met a possible gap and was asked to stop there (`stopAtGap`). */
export class GapError extends Data.TaggedError("GapError")<{ readonly gap: Gap }> {
  override get message(): string {
    return describeGap(this.gap)
  }
}

/** Tells `onGap` of a possible gap, then stops there (`stopAtGap`) or goes on. */
const meetGap = (
  options: Pick<Options, "onGap" | "stopAtGap">,
  gap: Gap
): Effect.Effect<void, GapError> => {
  const stop = options.stopAtGap === true
  const told = options.onGap?.(gap) ?? (stop ? Effect.void : Effect.logWarning(describeGap(gap)))
  return stop ? Effect.andThen(told, Effect.fail(new GapError({ gap }))) : told
}

/** A gap, as a person reads it. */
export const describeGap = (gap: Gap): string =>
  `events created between ${new Date(gap.from).toISOString()} and ${gap.to === undefined ? "the first event read" : new Date(gap.to).toISOString()} may be lost: ${gap.reason}`

/** An event and the cursor that resumes right after it. */
export interface Received<E = Event.Any> {
  readonly _tag: "Event"
  /** Where to resume: this event's id, or, for an event committed late, the position it was found behind. */
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

const DEFAULT_POLL_INTERVAL = "5 seconds"
const DEFAULT_RE_READ_WINDOW = "10 seconds"
const DEFAULT_RETENTION = "30 days"

/** The stream of events from `options.start` on; see the module's description. */
export const make = <const Ps extends ReadonlyArray<string> = ReadonlyArray<string>>(
  options: Options<Ps>
): Stream.Stream<
  Element<EventPattern.Matching<Ps>>,
  WorkOSError | EventPattern.UnknownPatternError | GapError,
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
      const since = sinceOf(options.start)
      const wanted = keep(everything ? undefined : patterns, options.organizationId, since)
      const pollInterval = options.pollInterval ?? DEFAULT_POLL_INTERVAL
      const follow = options.follow === true
      const window = Duration.toMillis(
        Duration.fromInputUnsafe(options.reReadWindow ?? DEFAULT_RE_READ_WINDOW)
      )
      const position = startPosition(options.start, window)
      const gapCheck = yield* retentionCheck(options, position)
      const warned = new Set<Anomaly["_tag"]>()

      const request = (after: string | undefined, from = since) =>
        workos.listEvents({
          order: "asc",
          limit: pageSize,
          after,
          // Once there is a cursor it alone says where to go on.
          rangeStart:
            after === undefined && from !== undefined ? new Date(from).toISOString() : undefined,
          events: types,
          organizationId: options.organizationId
        })

      /** The cursor of the last element handed on, for `onCaughtUp`. */
      let handedOn = position.cursor
      const handOn = (elements: ReadonlyArray<Element>) => {
        for (let i = elements.length - 1; i >= 0; i--) {
          const cursor = elements[i]!.cursor
          if (cursor !== undefined) {
            handedOn = cursor
            return
          }
        }
      }

      type Paged = readonly [ReadonlyArray<Element<EventPattern.Matching<Ps>>>, Option.Option<Step>]

      /** What a page read after `sent` hands on, and where the reading goes next. */
      const handle = (sent: string | undefined, page: EventList.EventList) => {
        const { elements, seen, admitted } = read(page, position, wanted)
        return Effect.flatMap(gapCheck(elements), (): Effect.Effect<Paged> => {
          const verdict = position.judge(sent, seen, admitted, page.list_metadata.after)
          handOn(elements)
          if (verdict.wait && follow) options.onCaughtUp?.(handedOn)
          const next: Step = { after: verdict.request, wait: verdict.wait }
          const paged: Paged = [
            elements as ReadonlyArray<Element<EventPattern.Matching<Ps>>>,
            verdict.caughtUp && !follow ? Option.none() : Option.some(next)
          ]
          const anomaly = verdict.anomaly
          if (anomaly === undefined || warned.has(anomaly._tag)) return Effect.succeed(paged)
          warned.add(anomaly._tag)
          return Effect.as(Effect.logWarning(describeAnomaly(anomaly)), paged)
        })
      }

      const poll =
        options.wake === undefined
          ? Effect.sleep(pollInterval)
          : Effect.raceFirst(Effect.sleep(pollInterval), options.wake)

      // Effects composed, not a generator made for each page: with one, pages outlived
      // young-generation collections (see `readReply` in WorkOS.ts).
      const step = (state: Step) => {
        const fetch = Effect.suspend(() => {
          const from = state.wait ? position.pollFrom() : state.after
          return request(from).pipe(
            Effect.catchIf(
              (error) => from !== undefined && refusesCursor(error),
              (error) => cursorRefused(from!, error, position, options, request)
            ),
            Effect.flatMap((page) => handle(from, page))
          )
        })
        return state.wait ? Effect.andThen(poll, fetch) : fetch
      }

      // One page ahead: the next request is on its way while this page is delivered.
      return Stream.paginate({ after: position.cursor, wait: false } as Step, step).pipe(
        Stream.bufferArray({ capacity: 1 })
      )
    })
  )

/** WorkOS answered 4xx naming the cursor: it no longer knows it (expired, or never had it). */
const refusesCursor = (error: WorkOSError): boolean =>
  error._tag === "WorkOSApiError" &&
  error.status >= 400 &&
  error.status < 500 &&
  error.status !== 401 &&
  error.status !== 403 &&
  (error.errors.some((e) => e.field === "after") || /\b(after|cursor)\b/i.test(error.detail))

/**
 * A refused cursor is a possible gap from the position's time on: told (or the
 * stream fails, with `stopAtGap`), then read from that time with `range_start`;
 * what the server sends from before the position is dropped as stale.
 */
const cursorRefused = (
  cursor: string,
  error: WorkOSError,
  position: Position,
  options: Options<ReadonlyArray<string>>,
  request: (
    after: string | undefined,
    from?: number
  ) => Effect.Effect<EventList.EventList, WorkOSError>
) =>
  Effect.gen(function* () {
    const from = position.time() ?? idTime(cursor) ?? 0
    const gap: Gap = {
      from,
      to: undefined,
      cursor,
      reason: `WorkOS refused the cursor: ${error.message}`
    }
    yield* meetGap(options, gap)
    return yield* request(undefined, from)
  })

/** How the stream goes on after a page: from where, and whether to wait the poll interval first. */
interface Step {
  readonly after: string | undefined
  readonly wait: boolean
}

/** The created-at lower bound of a start (ms): `since`, or now for `latest`. */
const sinceOf = (start: Start): number | undefined => {
  if (start === "latest") return Date.now()
  if (typeof start === "object" && "since" in start) {
    const ms = start.since instanceof Date ? start.since.getTime() : Date.parse(start.since)
    return Number.isNaN(ms) ? undefined : ms
  }
  return undefined
}

const startPosition = (start: Start, window: number): Position => {
  if (typeof start === "object" && "after" in start) {
    const createdAt = start.createdAt === undefined ? undefined : Date.parse(start.createdAt)
    return new Position(start.after, Number.isNaN(createdAt) ? undefined : createdAt, window)
  }
  return new Position(undefined, undefined, window)
}

/**
 * A cursor older than retention: WorkOS may have dropped events after it. Told once,
 * at the first event read (which bounds the gap), or at once when none comes.
 */
const retentionCheck = (options: Options<ReadonlyArray<string>>, position: Position) =>
  Effect.sync(() => {
    const cursor = position.cursor
    const start = options.start
    const createdAt =
      typeof start === "object" && "after" in start && start.createdAt !== undefined
        ? Date.parse(start.createdAt)
        : cursor === undefined
          ? undefined
          : idTime(cursor)
    const retention = Duration.toMillis(
      Duration.fromInputUnsafe(options.retention ?? DEFAULT_RETENTION)
    )
    let pending =
      cursor !== undefined &&
      createdAt !== undefined &&
      !Number.isNaN(createdAt) &&
      createdAt < Date.now() - retention
    return (elements: ReadonlyArray<Element>): Effect.Effect<void, GapError> => {
      if (!pending) return Effect.void
      pending = false
      const first = elements.find((e) => e._tag === "Event") as Received | undefined
      const gap: Gap = {
        from: createdAt!,
        to: first === undefined ? undefined : Date.parse(first.event.created_at),
        cursor: cursor!,
        reason: `the cursor ${cursor} is older than WorkOS keeps events (${Duration.format(Duration.fromInputUnsafe(options.retention ?? DEFAULT_RETENTION))})`
      }
      return meetGap(options, gap)
    }
  })

const describeAnomaly = (anomaly: Anomaly): string => {
  switch (anomaly._tag) {
    case "Restarted":
      return `WorkOS answered after=${anomaly.after} from an older event (${anomaly.oldest}): it does not know that cursor; reading forward to it, delivering nothing twice`
    case "Repeated":
      return `WorkOS sent list_metadata.after=${anomaly.sent}, the cursor it was asked with; going on from the last event read, after the poll interval if nothing was new`
    case "Backwards":
      return `WorkOS sent list_metadata.after=${anomaly.sent}, behind the position ${anomaly.position}; ignored: the cursor never moves backwards`
  }
}

/** Reads one page into elements: each event checked against the position and the filters. */
const read = (
  page: EventList.EventList,
  position: Position,
  wanted: (type: string | undefined, raw: unknown) => boolean
): { elements: Array<Element>; seen: Array<Seen>; admitted: number } => {
  const elements: Array<Element> = []
  const seen: Array<Seen> = new Array(page.data.length)
  let admitted = 0
  for (let i = 0; i < page.data.length; i++) {
    const result = page.data[i]!
    const raw: any = Result.isSuccess(result) ? result.success : result.failure.raw
    const id: string | undefined = Result.isSuccess(result) ? result.success.id : result.failure.id
    const event: Seen = {
      id,
      createdAt: typeof raw?.created_at === "string" ? timeOf(raw.created_at) : Number.NaN
    }
    seen[i] = event
    if (!position.admit(event)) continue
    admitted++
    if (Result.isSuccess(result)) {
      const decoded = result.success
      if (wanted(decoded.event, decoded))
        elements.push({ _tag: "Event", cursor: position.cursor!, event: decoded })
    } else if (wanted(result.failure.type, raw)) {
      elements.push({ _tag: "Undecodable", cursor: position.cursor, error: result.failure })
    }
  }
  return { elements, seen, admitted }
}

/**
 * The check run on every event received, since a server may ignore a filter: its
 * type against the patterns, its organization when the payload names one, and its
 * creation time against `since`. An event whose type, organization or time cannot
 * be told is kept: it is never dropped for want of evidence.
 */
const keep = (
  patterns: ReadonlyArray<string> | undefined,
  organizationId: string | undefined,
  since: number | undefined
): ((type: string | undefined, raw: unknown) => boolean) => {
  const selected =
    patterns === undefined ? undefined : new Set<string>(EventPattern.expand(patterns))
  return (type, raw) => {
    if (selected !== undefined && type !== undefined && !selected.has(type)) return false
    if (!isObject(raw)) return true
    if (organizationId !== undefined && isObject(raw.data)) {
      const named = raw.data.organization_id
      if (typeof named === "string" && named !== organizationId) return false
    }
    if (since !== undefined && typeof raw.created_at === "string") {
      if (timeOf(raw.created_at) < since) return false
    }
    return true
  }
}
