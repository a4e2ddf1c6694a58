/**
 * Reading what people write in config files and on command lines: durations such
 * as `"500ms"` or `"30 days"`, instants such as `2026-01-31` or `24h` (ago), and the known name closest to a misspelt one (for
 * "did you mean ...?"). Shared so that every package reads a duration the same way
 * and suggests names the same way.
 */

const units: Record<string, number> = {
  ms: 1,
  millis: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 7 * 86_400_000,
  week: 7 * 86_400_000,
  weeks: 7 * 86_400_000
}

/**
 * Milliseconds of a duration: `"500ms"`, `"5s"`, `"2 minutes"`, `"1.5h"`, `"30d"`,
 * `"2w"` (units ms, s, m, h, d, w and their names, any case); a bare number, or a
 * string of one, is milliseconds. Undefined when it is not a duration (or negative).
 */
export const parseDuration = (input: string | number): number | undefined => {
  if (typeof input === "number") return Number.isFinite(input) && input >= 0 ? input : undefined
  if (/^\s*\d+(?:\.\d+)?\s*$/.test(input)) return Number(input)
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$/i.exec(input)
  if (match === null) return undefined
  const unit = units[match[2]!.toLowerCase()]
  return unit === undefined ? undefined : Number(match[1]) * unit
}

/** The days of a month (1-12) of a year: 28 to 31. */
export const daysInMonth = (year: number, month: number): number =>
  new Date(Date.UTC(year, month, 0)).getUTCDate()

/**
 * An instant as people write one on a command line: an ISO-8601 time
 * (`2026-01-31`, `2026-01-31T08:00:00Z`) or a duration ago (`24h`, `7d`, `30 minutes`).
 * Undefined when it is neither.
 */
export const parseInstant = (text: string, now = Date.now()): Date | undefined => {
  // Only ISO-8601 dates: `Date.parse` also reads "10" as October 2001.
  const date = /^\s*(\d{4})-(\d{2})-(\d{2})/.exec(text)
  if (date !== null) {
    const ms = Date.parse(text)
    // `Date.parse` rolls a day past the month's end over: "2026-02-30" is March 2.
    const [year, month, day] = date.slice(1).map(Number) as [number, number, number]
    return Number.isNaN(ms) || day > daysInMonth(year, month) ? undefined : new Date(ms)
  }
  const ago = /[a-z]\s*$/i.test(text) ? parseDuration(text) : undefined
  return ago !== undefined && ago > 0 ? new Date(now - ago) : undefined
}

/** Levenshtein distance: the fewest one-character insertions, deletions and substitutions from `a` to `b`. */
export const distance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)
      )
    }
    previous = current
  }
  return previous[b.length]!
}

/**
 * The candidates closest to a misspelt `word` (ignoring case), at most `limit` of
 * them, in their given order; none when even the closest is too far to be a typo
 * (more edits than a third of the word's length, and more than 2).
 */
export const closest = (
  word: string,
  candidates: Iterable<string>,
  limit = 1
): ReadonlyArray<string> => {
  const lower = word.toLowerCase()
  let best: Array<string> = []
  let bestDistance = Number.POSITIVE_INFINITY
  for (const candidate of candidates) {
    const d = distance(lower, candidate.toLowerCase())
    if (d < bestDistance) {
      best = [candidate]
      bestDistance = d
    } else if (d === bestDistance && best.length < limit) best.push(candidate)
  }
  return bestDistance <= Math.max(2, Math.ceil(word.length / 3)) ? best.slice(0, limit) : []
}
