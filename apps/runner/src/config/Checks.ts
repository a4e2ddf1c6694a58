/**
 * The checks the Schema cannot make, each a problem where it is: the source's type,
 * event patterns, the start time, the order of the retry delays, the HTTP address;
 * and whether a sink's event lists leave it any event.
 */
import { Event, EventPattern, Text } from "@workos-relay/core"
import * as Result from "effect/Result"
import { isRecord, isString } from "./Guards.ts"
import type { Problem } from "./Problem.ts"
import { defaults, sourceTypes } from "./Schema.ts"

/**
 * Says what is wrong with a source (`source`, or `sources.<name>`) in its own words,
 * not the Schema's union of every source type: a missing or unknown `type`, or a key
 * of the other type.
 */
export const checkSourceType = (source: unknown, path: string, problems: Array<Problem>) => {
  if (source === undefined) return
  const replace = (problem: Problem) => {
    // The Schema's own report of the same thing, as `source: Expected { ... } | { ... }`.
    const at = problems.findIndex((p) => p.path === path)
    if (at === -1) problems.push(problem)
    else problems[at] = problem
  }
  if (!isRecord(source)) {
    replace({ path, message: "expected a mapping with type: workos or demo" })
    return
  }
  const type: unknown = source.type
  if (type !== "workos" && type !== "demo") {
    replace({
      path: `${path}.type`,
      message: `expected "workos" or "demo"${type === undefined ? "" : `, got ${JSON.stringify(type)}`}`
    })
    return
  }
  const other = type === "workos" ? "demo" : "workos"
  problems.forEach((p, i) => {
    const key = p.path.startsWith(`${path}.`) ? p.path.slice(path.length + 1) : undefined
    if (
      key !== undefined &&
      p.message.startsWith("unknown key") &&
      Object.hasOwn(sourceTypes[other].fields, key) &&
      !Object.hasOwn(sourceTypes[type].fields, key)
    )
      problems[i] = { path: p.path, message: `only for source type ${other}` }
  })
}

/**
 * Whether a sink's pattern lists (its type's, the file's, its own), each valid, leave
 * it no event: no known type is in all of them, and not all take unknown types (`*`).
 */
export const nothingPasses = (lists: ReadonlyArray<ReadonlyArray<string>>): boolean =>
  // An empty list or an unknown pattern has its own problem already.
  lists.every((list) => list.length > 0 && Result.isSuccess(EventPattern.validate(list))) &&
  !lists.every((list) => list.includes("*")) &&
  !Event.eventTypes.some((type) =>
    lists.every((list) => list.some((pattern) => EventPattern.matchesName(pattern, type)))
  )

/** Checks each pattern of a list as written (other entries are the Schema's to report). */
export const checkPatterns = (patterns: unknown, path: string, problems: Array<Problem>) => {
  if (!Array.isArray(patterns)) return
  // Read as "every type" by some, it would let no event through.
  if (patterns.length === 0)
    problems.push({
      path,
      message:
        'an empty list lets no event through; leave the key out for every type, or give patterns such as "dsync.*"'
    })
  patterns.forEach((pattern, i) => {
    if (!isString(pattern)) return
    const checked = EventPattern.validate([pattern])
    if (Result.isFailure(checked))
      problems.push({ path: `${path}[${i}]`, message: checked.failure.message })
  })
}

/**
 * What is wrong with an ISO-8601 time, if anything. `Date.parse` rolls a day past the
 * month's end over ("2026-02-30" is March 2) and reads "10" as October 2001.
 */
export const startTimeProblem = (text: string): string | undefined => {
  const date = /^\s*(\d{4})-(\d{2})-(\d{2})/.exec(text)
  if (date === null || Number.isNaN(Date.parse(text)))
    return `expected "latest", "earliest", an ISO-8601 time or an event id (event_...), got "${text}"`
  if (Text.parseInstant(text) !== undefined) return undefined
  // Only a day past the month's end parses yet is refused (see Text.parseInstant).
  const [year, month] = date.slice(1).map(Number) as [number, number]
  const monthName = new Date(Date.UTC(year, month - 1, 1)).toLocaleString("en", {
    month: "long",
    timeZone: "UTC"
  })
  return `"${text}" is not a date: ${monthName} ${year} has ${Text.daysInMonth(year, month)} days`
}

/** The backoff doubles from initialDelay up to maxDelay: the other way round is a mistake. */
export const checkRetryOrder = (retry: unknown, path: string, problems: Array<Problem>) => {
  if (!isRecord(retry)) return
  // A duration that is not one: the Schema said so already.
  const duration = (input: unknown, fallback: number) =>
    input === undefined
      ? fallback
      : typeof input === "string" || typeof input === "number"
        ? Text.parseDuration(input)
        : undefined
  const initialDelay = duration(retry.initialDelay, defaults.retry.initialDelay)
  const maxDelay = duration(retry.maxDelay, defaults.retry.maxDelay)
  if (initialDelay === undefined || maxDelay === undefined || initialDelay <= maxDelay) return
  const initial =
    retry.initialDelay === undefined
      ? `${defaults.retry.initialDelay}ms, the default`
      : JSON.stringify(retry.initialDelay)
  problems.push(
    retry.maxDelay === undefined
      ? {
          path: `${path}.initialDelay`,
          message: `expected at most maxDelay (${defaults.retry.maxDelay / 1000}s, the default), got ${initial}`
        }
      : {
          path: `${path}.maxDelay`,
          message: `expected at least initialDelay (${initial}), got ${JSON.stringify(retry.maxDelay)}`
        }
  )
}

export const parseAddress = (address: string, problems: Array<Problem>) => {
  const match = /^(.*):(\d+)$/.exec(address)
  const port = match === null ? Number.NaN : Number(match[2])
  if (match === null || port > 65535) {
    problems.push({
      path: "http.address",
      message: `expected host:port such as "127.0.0.1:9464", got "${address}"`
    })
    return undefined
  }
  return { host: match[1] === "" ? "127.0.0.1" : match[1]!.replace(/^\[|\]$/g, ""), port }
}
