/**
 * Parallel catch-up: a reading far behind now is split into time slices read at
 * once (within the shared request budget) and handed on strictly in order; once
 * caught up, one sequential `EventStream` follows as usual.
 *
 * - The first slice starts where the reading stands (a cursor, a time, `earliest`);
 *   its first page tells how dense the events are, and so where it ends (at most
 *   `margin` before now) and how long the next slices are (about `sliceEvents` each).
 *   It goes parallel when the reading is far behind by time (at least `minBehind`
 *   old, and about `minEvents` or more lie ahead) or by events alone (see below).
 * - Behind by events: a sequential reading (one that started less than `minBehind`
 *   behind, or one following when a burst of events lands) judges the backlog from
 *   the pages it reads anyway, so it costs no request: two full pages in a row give
 *   the density of events, and density times the time left up to `margin` before
 *   now is the events behind. At `behindEvents` or more, the sequential reading
 *   ends after that page and a catch-up in slices goes on from its last event (one
 *   page the sequential reader had already asked for, one ahead, is dropped).
 * - Every other slice asks `range_start` (and `range_end`) once, then pages with
 *   `after`, and stops on its own at the first event created at or past its end: a
 *   server may ignore `range_end`, or not combine it with `after`. Each event is
 *   checked on our side to lie in its slice ([start, end) of `created_at`, so events
 *   of one millisecond on an edge all belong to the later slice), with every other
 *   defence of `EventStream` (filters, a never-backwards cursor, ids deduplicated).
 * - A server that ignores `range_start` (a slice's first page begins well before the
 *   slice) cannot be read in slices: the catch-up stops after the slices already
 *   handed on, and the sequential reader goes on from there (never again in parallel
 *   for the same `Progress`).
 * - Memory is bounded: at most `slices` slices are open, each holding at most
 *   `sliceBuffer` events read ahead; a slice with no room waits. Slices open only as
 *   far as delivery waits for reading while the process has time to spare (four times
 *   as many each time), so a server that answers at once, or a slow consumer, does
 *   not fill the heap for nothing.
 * - The slices stop `margin` before now (default: twice the re-read window, at least
 *   a minute), so every event in them was visible when read; the sequential reader
 *   goes on after the last event handed on, with its re-read window for late commits.
 * - Consumers move their checkpoints through what they delivered, as ever: after a
 *   crash the reading starts again from the checkpoint and catches up again.
 */

import { type EventLoopUtilization, performance } from "node:perf_hooks"
import type * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type * as EventList from "./EventList.ts"
import type * as EventPattern from "./EventPattern.ts"
import * as EventStream from "./EventStream.ts"
import { timeOf } from "./internal/DateTime.ts"
import { idTime } from "./internal/Position.ts"
import {
  type ListEventsParams,
  WorkOS,
  type WorkOSError,
  type Service as WorkOSService
} from "./WorkOS.ts"

export interface Options {
  /** `false`: always read sequentially (default `true`). */
  readonly enabled?: boolean | undefined
  /** Go parallel only when the reading is at least this old (default 10 minutes). */
  readonly minBehind?: Duration.Input | undefined
  /** ... and about this many events or more lie ahead, judged from the first page (default 5,000). */
  readonly minEvents?: number | undefined
  /**
   * Go parallel, however recent the reading, once about this many events are
   * behind, judged from two full pages in a row of the sequential reading (default
   * 10,000; 0: only by time).
   */
  readonly behindEvents?: number | undefined
  /** Slices open at once: read, or read ahead and waiting to be handed on (default 16). */
  readonly slices?: number | undefined
  /** Events a slice aims to hold, from the density seen so far (default 1,000). */
  readonly sliceEvents?: number | undefined
  /** Events a slice may hold read ahead before it waits (default 2,000). */
  readonly sliceBuffer?: number | undefined
  /** How long before now the slices stop (default: twice the re-read window, at least 1 minute). */
  readonly margin?: Duration.Input | undefined
  /** Where progress is told (and remembered: a server that ignores the range is not sliced again). */
  readonly progress?: Progress | undefined
}

/** How a catch-up is going, for metrics, the live line and `status`. */
export class Progress {
  /** A catch-up in slices is under way. */
  active = false
  /** The server ignored `range_start`: readings go on sequentially. */
  refused = false
  /** Catch-ups run in slices so far. */
  runs = 0
  slicesDone = 0
  /** Slices planned so far plus those still to plan at the current slice length. */
  slicesTotal = 0
  /** Slices being read or waiting to be handed on. */
  slicesOpen = 0
  /** Events handed on in this catch-up. */
  events = 0
  startedAt = 0
  /** The time range covered: from, up to where handed on, to. */
  from = 0
  reached = 0
  to = 0

  /** Events handed on per second in this catch-up. */
  eventsPerSecond(now = Date.now()): number {
    const seconds = (now - this.startedAt) / 1000
    return seconds > 0 ? this.events / seconds : 0
  }

  /** How long the rest should take at the pace so far (ms), or undefined before it can tell. */
  timeLeftMs(now = Date.now()): number | undefined {
    const done = this.reached - this.from
    if (!this.active || done <= 0) return undefined
    return ((this.to - this.reached) / done) * (now - this.startedAt)
  }
}

const DEFAULTS = {
  minBehind: "10 minutes",
  minEvents: 5_000,
  behindEvents: 10_000,
  slices: 16,
  sliceEvents: 1_000,
  sliceBuffer: 2_000
} as const

/** How far before a slice's start its first event may be made before we say the server ignored `range_start`. */
const RANGE_TOLERANCE = 1_000

type Element = EventStream.Element

/** The stream of `EventStream.make(options)`, catching up in slices when far behind. */
export const make = <const Ps extends ReadonlyArray<string> = ReadonlyArray<string>>(
  options: EventStream.Options<Ps>,
  catchUp: Options = {}
): Stream.Stream<
  EventStream.Element<EventPattern.Matching<Ps>>,
  WorkOSError | EventPattern.UnknownPatternError | EventStream.GapError,
  WorkOS
> => {
  const progress = catchUp.progress ?? new Progress()
  const start = options.start
  if (catchUp.enabled === false || progress.refused || start === "latest")
    return EventStream.make(options)
  const minBehind = Duration.toMillis(
    Duration.fromInputUnsafe(catchUp.minBehind ?? DEFAULTS.minBehind)
  )
  const at = startTime(start)
  const byTime = at === undefined || Date.now() - at >= minBehind
  return phase(options, catchUp, progress, start, byTime ? "byTime" : "no") as any
}

/**
 * One round: slices first (when `sliced`), then the sequential reading from the last
 * event handed on; when that one finds itself behind by events, another round from there.
 */
const phase = (
  options: EventStream.Options<ReadonlyArray<string>>,
  catchUp: Options,
  progress: Progress,
  start: EventStream.Start,
  sliced: "no" | "byTime" | "byEvents"
): Stream.Stream<Element, unknown, WorkOS> => {
  const behindEvents = catchUp.behindEvents ?? DEFAULTS.behindEvents
  const byEvents = sliced === "byEvents"
  // The last element handed on that has a cursor; a page at a time, nothing made per event.
  let last: Element | undefined
  const remember = (page: ReadonlyArray<Element>) => {
    for (let i = page.length - 1; i >= 0; i--) {
      if (page[i]!.cursor !== undefined) {
        last = page[i]
        return
      }
    }
  }
  const here = (): EventStream.Start => {
    if (last === undefined) return start
    const raw: any = last._tag === "Event" ? last.event : last.error.raw
    return {
      after: last.cursor!,
      createdAt: typeof raw?.created_at === "string" ? raw.created_at : undefined
    }
  }
  const slices =
    sliced !== "no"
      ? Stream.unwrap(
          Effect.map(WorkOS, (workos) =>
            inSlices({ ...options, start }, catchUp, progress, workos, remember, byEvents)
          )
        )
      : Stream.empty
  let behind = false
  const sequential = Stream.suspend(() => {
    const stream = EventStream.make({ ...options, start: here() }) as Stream.Stream<
      Element,
      unknown,
      WorkOS
    >
    if (behindEvents <= 0 || progress.refused) return stream
    const backlog = new Backlog(options.pageSize ?? 100, marginOf(options, catchUp))
    let stopAfter: Element | undefined
    return stream.pipe(
      Stream.mapArray((page) => {
        remember(page)
        if (!progress.refused && backlog.ahead(page) >= behindEvents) {
          behind = true
          stopAfter = page[page.length - 1]
        }
        return page
      }),
      Stream.takeUntil((element) => element === stopAfter)
    )
  })
  const again = Stream.suspend(() =>
    behind ? phase(options, catchUp, progress, here(), "byEvents") : Stream.empty
  )
  return Stream.concat(Stream.concat(slices, sequential), again)
}

/** How long before now slices stop (ms): twice the re-read window, at least a minute, unless set. */
const marginOf = (
  options: EventStream.Options<ReadonlyArray<string>>,
  catchUp: Options
): number => {
  if (catchUp.margin !== undefined)
    return Duration.toMillis(Duration.fromInputUnsafe(catchUp.margin))
  const window = Duration.toMillis(Duration.fromInputUnsafe(options.reReadWindow ?? "10 seconds"))
  return Math.max(2 * window, 60_000)
}

/**
 * The events behind a sequential reading, judged from the pages it reads: two full
 * pages in a row give the density, which times the time left up to `margin` before
 * now (what slices could cover) is the backlog. Anything less than two full pages
 * says nothing (0): a reading that keeps up gets short pages.
 */
class Backlog {
  private previous: { readonly count: number; readonly oldest: number } | undefined
  private readonly pageSize: number
  private readonly margin: number
  constructor(pageSize: number, margin: number) {
    this.pageSize = pageSize
    this.margin = margin
  }
  ahead(page: ReadonlyArray<Element>, now = Date.now()): number {
    let oldest = Number.POSITIVE_INFINITY
    let newest = Number.NEGATIVE_INFINITY
    for (const element of page) {
      const raw: any = element._tag === "Event" ? element.event : element.error.raw
      const t = typeof raw?.created_at === "string" ? timeOf(raw.created_at) : Number.NaN
      if (t < oldest) oldest = t
      if (t > newest) newest = t
    }
    const previous = this.previous
    const full = page.length >= this.pageSize && newest >= oldest
    this.previous = full ? { count: page.length, oldest } : undefined
    if (!full || previous === undefined) return 0
    const density = (previous.count + page.length) / Math.max(1, newest - previous.oldest)
    return Math.max(0, density * (now - this.margin - newest))
  }
}

/** The creation time a start stands at (ms), when it says. */
const startTime = (start: EventStream.Start): number | undefined => {
  if (typeof start !== "object") return undefined
  if ("since" in start) {
    const ms = start.since instanceof Date ? start.since.getTime() : Date.parse(start.since)
    return Number.isNaN(ms) ? undefined : ms
  }
  const ms = start.createdAt === undefined ? Number.NaN : Date.parse(start.createdAt)
  return Number.isNaN(ms) ? idTime(start.after) : ms
}

const createdAtOf = (result: EventList.EventList["data"][number]): number => {
  const raw: any = Result.isSuccess(result) ? result.success : result.failure.raw
  return typeof raw?.created_at === "string" ? timeOf(raw.created_at) : Number.NaN
}

/** The creation time of each event of a page (ms, NaN when unreadable): read once a page. */
const timesOf = (page: EventList.EventList): Array<number> => {
  const times = new Array<number>(page.data.length)
  for (let i = 0; i < times.length; i++) times[i] = createdAtOf(page.data[i]!)
  return times
}

/**
 * Slices open only while the process has time to spare: its event loop was busy less
 * than this share of the time since the last look. Waiting for WorkOS over the internet
 * (100-200 ms a page) leaves it idle most of the time, and more slices fill that time.
 * A server that answers at once keeps it busy decoding and delivering: more slices then
 * only hold more pages read ahead, each kept through young-generation GCs, for no gain
 * (on loopback two slices read faster than sixteen, promoting a third as much).
 */
const MAX_BUSY = 0.8

/**
 * Whether the event loop was busy less than `MAX_BUSY` of the time since the last
 * verdict; none (false) until 100 ms have passed, as a shorter span says nothing.
 */
const idleSince = (since: { utilization: EventLoopUtilization }): boolean => {
  const now = performance.eventLoopUtilization()
  const span = performance.eventLoopUtilization(now, since.utilization)
  if (span.idle + span.active < 100) return false
  since.utilization = now
  return span.utilization < MAX_BUSY
}

/** Events read ahead by one slice, in pages; the reader waits when it is full. */
class SliceBuffer {
  private pages: Array<ReadonlyArray<Element>> = []
  private size = 0
  private onItems: (() => void) | undefined
  private onSpace: (() => void) | undefined
  done = false
  failure: Cause.Cause<unknown> | undefined
  /** Times `next` found nothing yet and waited: the reading, not the delivery, was behind. */
  waits = 0
  readonly capacity: number
  constructor(capacity: number) {
    this.capacity = capacity
  }
  /** Adds a page, once there is room for it (or the buffer is empty). */
  put(page: ReadonlyArray<Element>): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      const add = () => {
        this.pages.push(page)
        this.size += page.length
        this.wake()
        resume(Effect.void)
      }
      if (this.size === 0 || this.size + page.length <= this.capacity) return add()
      this.onSpace = add
      return Effect.sync(() => {
        this.onSpace = undefined
      })
    })
  }
  finish(failure?: Cause.Cause<unknown>): void {
    this.done = true
    this.failure = failure
    this.wake()
  }
  private wake(): void {
    const f = this.onItems
    this.onItems = undefined
    f?.()
  }
  /** The next page; undefined once the slice is read to its end and handed on. */
  readonly next: Effect.Effect<ReadonlyArray<Element> | undefined> = Effect.callback((resume) => {
    const take = () => {
      const page = this.pages.shift()
      if (page !== undefined) {
        this.size -= page.length
        const f = this.onSpace
        this.onSpace = undefined
        f?.()
      }
      resume(Effect.succeed(page))
    }
    if (this.pages.length > 0 || this.done) return take()
    this.waits++
    this.onItems = take
    return Effect.sync(() => {
      this.onItems = undefined
    })
  })
}

interface Slice {
  readonly index: number
  readonly start: EventStream.Start
  /** Where it starts (ms): undefined for the first slice until its first page says. */
  from: number | undefined
  /** Where it ends (ms, exclusive); the first slice's is set by its first page. */
  end: number
  readonly buffer: SliceBuffer
  firstPage: boolean
  /** The server ignored `range_start` for it. */
  refused: boolean
  /** Events the server gave inside it (for the density). */
  received: number
}

const inSlices = (
  options: EventStream.Options<ReadonlyArray<string>>,
  catchUp: Options,
  progress: Progress,
  workos: WorkOSService,
  onPage: (page: ReadonlyArray<Element>) => void,
  byEvents: boolean
): Stream.Stream<Element, unknown> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const scope = yield* Effect.scope
      const now = Date.now()
      const margin = marginOf(options, catchUp)
      const to = now - margin
      const maxOpen = Math.max(1, catchUp.slices ?? DEFAULTS.slices)
      // Slices open at once only as far as delivery waits for reading: four times as
      // many each time the slice being handed on had nothing ready while the process
      // had time to spare (`MAX_BUSY`). Over the internet that is soon all of them; where
      // the server answers at once (loopback) two, and no heap full of events read ahead.
      let allowed = Math.min(maxOpen, 2)
      const loop = { utilization: performance.eventLoopUtilization() }
      const sliceEvents = Math.max(100, catchUp.sliceEvents ?? DEFAULTS.sliceEvents)
      const capacity = Math.max(100, catchUp.sliceBuffer ?? DEFAULTS.sliceBuffer)
      // A round started by events goes parallel at what started it, even under `minEvents`.
      const minEvents = Math.min(
        catchUp.minEvents ?? DEFAULTS.minEvents,
        byEvents ? (catchUp.behindEvents ?? DEFAULTS.behindEvents) : Number.POSITIVE_INFINITY
      )

      const open: Array<Slice> = []
      /** Where the next slice to plan starts (ms); undefined until the first page; `to`: none left. */
      let nextFrom: number | undefined
      let density = 0 // events per ms
      let refused = false
      let planned = 0
      let coveredMs = 0
      let coveredEvents = 0

      const sliceLength = () =>
        Math.max(1_000, density > 0 ? sliceEvents / density : 60 * 60 * 1000)
      /** Edges on whole seconds: easy to read in logs, and many events may share one. */
      const edge = (ms: number) => Math.min(to, Math.ceil(ms / 1000) * 1000)

      /** The first page of the first slice: how dense the events are, so whether and how to slice. */
      const plan = (head: Slice, page: EventList.EventList, all: ReadonlyArray<number>) => {
        const times = all.filter((t) => !Number.isNaN(t))
        if (times.length === 0 || page.list_metadata.after === null) return
        const first = head.from ?? Math.min(...times)
        const newest = Math.max(...times)
        head.from = first
        density = times.length / Math.max(1, newest - first)
        const ahead = density * (to - newest)
        if (newest >= to || ahead < minEvents) return
        head.end = edge(newest + 1 + sliceLength())
        nextFrom = head.end
        progress.active = true
        progress.runs++
        progress.startedAt = Date.now()
        progress.from = first
        progress.reached = first
        progress.to = to
        progress.events = 0
        progress.slicesDone = 0
      }

      /** The WorkOS client as one slice sees it: its end applied, and its start checked. */
      const sliceClient = (slice: Slice): WorkOSService => ({
        ...workos,
        listEvents: (params?: ListEventsParams) =>
          workos
            .listEvents(
              Number.isFinite(slice.end)
                ? { ...params, rangeEnd: new Date(slice.end).toISOString() }
                : params
            )
            .pipe(Effect.map((page) => cut(slice, page)))
      })

      const cut = (slice: Slice, page: EventList.EventList): EventList.EventList => {
        const times = timesOf(page)
        if (!slice.firstPage) {
          slice.firstPage = true
          if (slice.index === 0) plan(slice, page, times)
          else {
            const first = times.find((t) => !Number.isNaN(t))
            if (first !== undefined && first < slice.from! - RANGE_TOLERANCE) {
              slice.refused = true
              refused = true
              return { ...page, data: [], list_metadata: { after: null } }
            }
          }
        }
        if (!Number.isFinite(slice.end)) return page
        const past = times.findIndex((t) => t >= slice.end)
        const kept = past < 0 ? page.data.length : past
        // The density counts only events inside the slice (a server may walk from before it).
        const from = slice.from ?? Number.NEGATIVE_INFINITY
        for (let i = 0; i < kept; i++) if (times[i]! >= from) slice.received++
        return past < 0
          ? page
          : { ...page, data: page.data.slice(0, past), list_metadata: { after: null } }
      }

      const launch = (slice: Slice) =>
        EventStream.make({ ...options, start: slice.start, follow: false }).pipe(
          Stream.provideService(WorkOS, sliceClient(slice)),
          Stream.runForEachArray((page) => slice.buffer.put(page)),
          Effect.onExit((exit) =>
            Effect.sync(() => slice.buffer.finish(exit._tag === "Failure" ? exit.cause : undefined))
          ),
          Effect.forkIn(scope)
        )

      const newSlice = (
        start: EventStream.Start,
        from: number | undefined,
        end: number
      ): Slice => ({
        index: planned++,
        start,
        from,
        end,
        buffer: new SliceBuffer(capacity),
        firstPage: false,
        refused: false,
        received: 0
      })

      /** Opens slices up to the limit, while there is range left to plan. */
      const topUp = Effect.suspend(() => {
        const more: Array<Slice> = []
        while (!refused && nextFrom !== undefined && nextFrom < to && open.length < allowed) {
          const from = nextFrom
          const end = Math.max(edge(from + sliceLength()), Math.min(to, from + 1_000))
          nextFrom = end
          const slice = newSlice({ since: new Date(from).toISOString() }, from, end)
          open.push(slice)
          more.push(slice)
        }
        progress.slicesOpen = open.length
        progress.slicesTotal =
          planned +
          (nextFrom === undefined || nextFrom >= to
            ? 0
            : Math.ceil((to - nextFrom) / sliceLength()))
        return Effect.forEach(more, launch, { discard: true })
      })

      const finished = (slice: Slice) => {
        if (slice.from !== undefined && Number.isFinite(slice.end)) {
          coveredMs += slice.end - slice.from
          coveredEvents += slice.received
          if (coveredMs > 0 && coveredEvents > 0) density = coveredEvents / coveredMs
        }
        progress.slicesDone++
        if (Number.isFinite(slice.end)) progress.reached = slice.end
      }

      // Even read alone, the first slice stops `margin` before now: what it hands on was
      // all visible when read, and the sequential reader (with its re-read window) takes
      // over from its last event.
      const head = newSlice(options.start, startTime(options.start), to)
      open.push(head)
      yield* launch(head)

      type Paged = readonly [ReadonlyArray<Element>, Option.Option<void>]
      const done: Effect.Effect<Paged> = Effect.sync(() => {
        progress.active = false
        progress.slicesOpen = 0
        return [[], Option.none()] as const
      })

      /**
       * The next page to hand on, in slice order; none once the slices are done.
       * Effects composed, not a generator made for each page: with one, pages outlived
       * young-generation collections (see `readReply` in WorkOS.ts).
       */
      const step = (): Effect.Effect<Paged, unknown> => {
        const slice = open[0]
        if (slice === undefined) return done
        const waits = slice.buffer.waits
        return Effect.flatMap(slice.buffer.next, (page): Effect.Effect<Paged, unknown> => {
          // (The wait for the first page, before the plan, says nothing yet.)
          if (slice.buffer.waits > waits && nextFrom !== undefined && idleSince(loop))
            allowed = Math.min(maxOpen, allowed * 4)
          if (page !== undefined) {
            onPage(page)
            progress.events += page.length
            return Effect.as(topUp, [page, Option.some(undefined)] as const)
          }
          if (slice.buffer.failure !== undefined) return Effect.failCause(slice.buffer.failure)
          open.shift()
          if (slice.refused) {
            // The server ignores `range_start`: the sequential reader goes on from here.
            progress.refused = true
            return Effect.andThen(
              Effect.logWarning(
                "WorkOS ignored range_start: catching up sequentially instead of in parallel slices"
              ),
              done
            )
          }
          finished(slice)
          return Effect.andThen(topUp, Effect.suspend(step))
        })
      }
      return Stream.paginate(undefined as void, step)
    })
  )
