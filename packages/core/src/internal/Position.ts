/**
 * Where a reading of `GET /events` stands, and the checks of each page against it.
 * The server is not trusted: a real one may ignore `order`, `range_start` or the
 * type filter, answer an `after` it does not know from its oldest event, send a
 * `list_metadata.after` that repeats or points backwards, or commit an event a few
 * seconds late with an id older than events already served.
 *
 * - The position (the id a consumer resumes after) never moves backwards; an event
 *   behind it is either a late commit inside the re-read window (delivered once, by
 *   id) or stale (the server went back: dropped).
 * - Ids handed out within the re-read window are remembered, so a page served
 *   twice, or read again on purpose, repeats nothing.
 * - The next request never goes back either: a `list_metadata.after` that would is
 *   ignored. A page that moves nothing means "wait the poll interval", never a tight
 *   loop. A server that answered from behind the position (it did not know the
 *   cursor) is read forward along its own listing, its stale events dropped, until
 *   it is past the position again.
 *
 * Ids are compared as strings: WorkOS's (and the stand-in's) are ULIDs behind a
 * fixed prefix, so string order is creation order to the millisecond.
 */

/** What a page did to the reading: how it went on, and anything odd about the server's answer. */
export interface PageVerdict {
  /** The next request asks `after` this (undefined: from the start, with the range). */
  readonly request: string | undefined
  /** Wait the poll interval before the next request (caught up, or the server gave nothing new). */
  readonly wait: boolean
  /** The stream may end here (caught up, when not following). */
  readonly caughtUp: boolean
  /** What the server did that a correct one would not, said once per kind by the stream. */
  readonly anomaly: Anomaly | undefined
}

export type Anomaly =
  | { readonly _tag: "Backwards"; readonly sent: string; readonly position: string }
  | { readonly _tag: "Repeated"; readonly sent: string }
  | { readonly _tag: "Restarted"; readonly after: string; readonly oldest: string }

/** One event of a page, as far as the position cares. */
export interface Seen {
  readonly id: string | undefined
  /** Creation time in ms, NaN when it cannot be read. */
  readonly createdAt: number
}

/** The time in a ULID-shaped id (`event_01H...`), in ms; undefined for another shape. */
export const idTime = (id: string): number | undefined => {
  const match = /_([0-7][0-9A-HJKMNP-TV-Z]{9})[0-9A-HJKMNP-TV-Z]{16}$/.exec(id)
  if (match === null) return undefined
  let ms = 0
  for (const c of match[1]!) ms = ms * 32 + CROCKFORD.indexOf(c)
  return ms
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

export class Position {
  /** The id a consumer resumes after; never moves backwards. */
  cursor: string | undefined
  /** The newest creation time seen (ms); late commits are looked for this far back. */
  private watermark: number
  private readonly window: number
  /** Ids handed out (or looked at and skipped) in the re-read window, with their times. */
  private readonly recent = new Map<string, number>()
  /** The newest id forgotten: a poll that reads the window again starts after it. */
  private anchor: string | undefined

  constructor(cursor: string | undefined, watermark: number | undefined, window: number) {
    this.cursor = cursor
    this.anchor = cursor
    this.watermark =
      watermark ?? (cursor === undefined ? Number.NaN : (idTime(cursor) ?? Number.NaN))
    this.window = window
  }

  /** The newest creation time seen (ms), when one was. */
  time(): number | undefined {
    return Number.isNaN(this.watermark) ? undefined : this.watermark
  }

  /** Whether the event is new to the reading: not seen, and not behind the position beyond the window. */
  admit(event: Seen): boolean {
    const { id, createdAt } = event
    if (id === undefined) return true
    // The position's own event was handed out before the reading resumed after it.
    if (this.recent.has(id) || id === this.cursor) return false
    const behind = this.cursor !== undefined && id <= this.cursor
    if (behind && !(createdAt >= this.watermark - this.window)) return false
    this.recent.set(id, createdAt)
    if (!behind) this.cursor = id
    if (createdAt > this.watermark || Number.isNaN(this.watermark)) this.watermark = createdAt
    return true
  }

  /**
   * The verdict on a page that asked `after: sent`: `page` its events in order,
   * `admitted` how many `admit` took, `after` the server's `list_metadata.after`.
   * The next request follows the server's listing (its `after`, or the page's last
   * id when that is further on) and only ever forwards; a page that moves it
   * nowhere waits the poll interval.
   */
  judge(
    sent: string | undefined,
    page: ReadonlyArray<Seen>,
    admitted: number,
    after: string | null
  ): PageVerdict {
    this.forget()
    const last = lastId(page)
    const forward = (id: string | null | undefined): id is string =>
      id !== undefined && id !== null && (sent === undefined || id > sent)
    const next =
      forward(after) && forward(last)
        ? after > last
          ? after
          : last
        : forward(after)
          ? after
          : forward(last)
            ? last
            : undefined
    const end = after === null || next === undefined
    return {
      request: next ?? sent,
      wait: end,
      caughtUp: end,
      anomaly: this.anomaly(sent, page, admitted, after, last)
    }
  }

  private anomaly(
    sent: string | undefined,
    page: ReadonlyArray<Seen>,
    admitted: number,
    after: string | null,
    last: string | undefined
  ): Anomaly | undefined {
    // Every event behind the position and never seen: the server answered from its oldest.
    if (
      sent !== undefined &&
      admitted === 0 &&
      page.length > 0 &&
      page.every((e) => this.isStale(e))
    )
      return { _tag: "Restarted", after: sent, oldest: page[0]!.id ?? "(no id)" }
    if (after === null || sent === undefined) return undefined
    if (after === sent) return { _tag: "Repeated", sent: after }
    if (after < sent || (last !== undefined && after < last))
      return { _tag: "Backwards", sent: after, position: this.cursor ?? sent }
    return undefined
  }

  /**
   * Where a poll starts once caught up: far enough back to read the re-read window
   * again, so an event committed late with an older id is not skipped. Everything
   * handed out after it is still remembered, so what is read again repeats nothing.
   */
  pollFrom(): string | undefined {
    this.forget()
    return this.anchor
  }

  /** Forgets ids older than the window (in the order they came: roughly creation order). */
  forget(): void {
    const horizon = this.watermark - this.window
    for (const [id, createdAt] of this.recent) {
      // A window of 0 re-reads nothing: not even the events of the newest millisecond.
      if (!(createdAt < horizon || this.window === 0)) break
      this.recent.delete(id)
      if (this.anchor === undefined || id > this.anchor) this.anchor = id
    }
  }

  /** Behind the position, beyond the window, and never seen: not a page we have read before. */
  private isStale(event: Seen): boolean {
    if (event.id === undefined || this.cursor === undefined) return false
    if (this.recent.has(event.id)) return false
    return event.id <= this.cursor && !(event.createdAt >= this.watermark - this.window)
  }
}

const lastId = (page: ReadonlyArray<Seen>): string | undefined => {
  for (let i = page.length - 1; i >= 0; i--) if (page[i]!.id !== undefined) return page[i]!.id
  return undefined
}
