/** Small text helpers of the runner (durations and typo suggestions are in @workos-relay/core `Text`). */
import * as Util from "node:util"

/** `1500` -> `"1.5s"`, for logs and the CLI. */
export const formatMillis = (ms: number): string => {
  if (!Number.isFinite(ms)) return "-"
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`
  return `${Math.floor(ms / 3_600_000)}h${Math.round((ms % 3_600_000) / 60_000)}m`
}

/**
 * A value a sink failed with or threw, for a person: an Error's message, any other
 * value on one short line (`{ code: 42 }`), never `[object Object]` or a stack.
 */
export const describeFailure = (value: unknown): string => {
  if (typeof value === "string") return value
  if (value instanceof Error) return value.message || value.name
  const message = (value as { message?: unknown } | null)?.message
  if (typeof message === "string" && message !== "") return message
  const text = Util.inspect(value, { breakLength: Number.POSITIVE_INFINITY, depth: 2 })
  return text.length > 200 ? `${text.slice(0, 199)}…` : text
}
