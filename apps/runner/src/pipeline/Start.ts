/**
 * Where a lane starts, and how that is kept in its checkpoint. A checkpoint is the
 * id of the last event done with, or, before the first event, the time the lane
 * starts from (`latest` resolved to the instant the runner first started, or a
 * configured `since`): saved at once, so a runner stopped before any event arrives
 * starts from the same instant next time and loses nothing created in between.
 */
import type { EventStream } from "@workos-relay/core"
import type { Checkpoint } from "../StateStore.ts"

/** A checkpoint that holds a time rather than an event id. */
const isInstant = (cursor: string): boolean => /^\d{4}-\d{2}-\d{2}T/.test(cursor)

/** Where a lane with this checkpoint resumes. */
export const fromCheckpoint = (
  checkpoint: Checkpoint
): Exclude<EventStream.Start, "latest" | "earliest"> =>
  isInstant(checkpoint.cursor)
    ? { since: checkpoint.cursor }
    : checkpoint.eventCreatedAt === null
      ? { after: checkpoint.cursor }
      : { after: checkpoint.cursor, createdAt: checkpoint.eventCreatedAt }

/** `latest` is the instant it is resolved: events created from then on. No request is needed. */
export const resolve = (start: EventStream.Start, now = Date.now()): EventStream.Start =>
  start === "latest" ? { since: new Date(now).toISOString() } : start

/** The checkpoint to save for a start before any event is done with; undefined: nothing worth saving. */
export const toCheckpoint = (start: EventStream.Start): string | undefined =>
  typeof start === "object" && "since" in start
    ? start.since instanceof Date
      ? start.since.toISOString()
      : start.since
    : undefined

/** The creation time (ms) a start stands at, when it says: a `since`, or the cursor's event time. */
export const timeOf = (start: EventStream.Start): number | undefined => {
  if (typeof start !== "object") return undefined
  const text = "since" in start ? toCheckpoint(start) : start.createdAt
  const ms = text === undefined ? Number.NaN : Date.parse(text)
  return Number.isNaN(ms) ? undefined : ms
}
