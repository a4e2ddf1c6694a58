/**
 * WorkOS keeps events for a while only (`source.retention`, 30 days by default): a
 * sink whose unread events near that age is about to lose some. Each lane's share of
 * it is a metric, with a warning past half and an error past 80%, said once per
 * level as it is crossed.
 */
import * as Effect from "effect/Effect"
import { formatMillis } from "../internal/Text.ts"
import type { Metrics } from "../Observability.ts"
import type { Lane } from "./Lane.ts"

/** WorkOS's documented retention for the Events API (some accounts keep 90 days). */
export const defaultRetention = 30 * 24 * 60 * 60 * 1000

const levels = [
  { at: 0.8, log: Effect.logError, says: "events will be lost unless it catches up" },
  { at: 0.5, log: Effect.logWarning, says: "past half of it" }
] as const

/** Checks every lane now and then, for as long as the run lasts. */
export const watch = (
  lanes: ReadonlyArray<Lane>,
  metrics: Metrics,
  retention: number,
  every = 60_000
): Effect.Effect<never> => {
  const said = new Map<string, number>()
  const check = Effect.forEach(lanes, (lane) => {
    const m = metrics.sink(lane.spec.name)
    const oldest = lane.oldestUnread()
    const used = oldest === undefined ? 0 : (Date.now() - oldest) / retention
    m.retentionUsed = used
    const level = levels.find((l) => used >= l.at)
    const before = said.get(lane.spec.name) ?? 0
    said.set(lane.spec.name, level?.at ?? 0)
    if (level === undefined || level.at <= before) return Effect.void
    return level.log(
      `sink ${lane.spec.name}: its oldest unread event is ${formatMillis(Date.now() - oldest!)} old, ${Math.round(used * 100)}% of source.retention (${formatMillis(retention)}): ${level.says}`
    )
  })
  return check.pipe(Effect.andThen(Effect.sleep(every)), Effect.forever)
}
