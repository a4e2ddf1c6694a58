/** Events for tests: WorkOS's examples with distinct ids, times and organizations. */
import { Event, Sink } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Result from "effect/Result"

export const all: ReadonlyArray<Event.Any> = Object.values(examples) as ReadonlyArray<Event.Any>

export const example = (type: string): Event.Any => {
  const e = all.find((x) => x.event === type)
  if (e === undefined) throw new Error(`no example of ${type}`)
  return structuredClone(e)
}

export const start = Date.parse("2026-01-01T00:00:00.000Z")

/**
 * `n` events cycling through every example type: ids `event_000001`..., one minute
 * apart from 2026-01-01, organizations alternating `org_a`/`org_b` (when the
 * payload has one), and no `context` on every third event (so the payload decides the actor).
 */
export const events = (n: number, from = 1): ReadonlyArray<Event.Any> =>
  Array.from({ length: n }, (_, k) => {
    const i = from + k
    const base = structuredClone(all[(i - 1) % all.length]!) as any
    base.id = `event_${String(i).padStart(6, "0")}`
    base.created_at = new Date(start + i * 60_000).toISOString()
    if (typeof base.data.organization_id === "string") {
      base.data.organization_id = i % 2 === 0 ? "org_a" : "org_b"
    }
    if (i % 3 === 0) delete base.context
    return base as Event.Any
  })

/**
 * `n` events whose payloads broke the spec, as the runner hands them to a raw sink:
 * the stand-in's drift cases in turn, ids and times as `events` makes them, each
 * marked (`Sink.mismatchOf`) by decoding it.
 */
export const drifted = (n: number, from = 1): ReadonlyArray<Event.Any> =>
  Array.from({ length: n }, (_, k) => {
    const i = from + k
    const { drift, type } = WorkOSStandIn.driftCases[(i - 1) % WorkOSStandIn.driftCases.length]!
    const raw = {
      ...WorkOSStandIn.driftedEvent(drift, type),
      id: `event_${String(i).padStart(6, "0")}`,
      created_at: new Date(start + i * 60_000).toISOString()
    }
    const decoded = Event.decode(raw)
    if (Result.isSuccess(decoded)) throw new Error(`${type} (${drift}) decoded`)
    return Sink.mismatched(decoded.failure)!
  })
