/**
 * The hand-written fast paths for the date-time shape WorkOS sends must agree with the
 * reference exactly: `isDateTime` with the RFC 3339 regex, `timeOf` with `Date.parse`,
 * on the usual shape and on every one- and two-character mutation of it.
 */
import { describe, expect, it } from "@effect/vitest"
import { DATE_TIME, isDateTime, timeOf } from "../src/internal/DateTime.ts"

const base = "2026-01-15T12:34:56.789Z"
const chars = "0123456789-:.TtZz+ /a\u0660"

/** Every string one or two characters away from `base` (the second from a few). */
const mutations = (): Array<string> => {
  const out: Array<string> = []
  for (let i = 0; i < base.length; i++)
    for (const c of chars) {
      const once = base.slice(0, i) + c + base.slice(i + 1)
      out.push(once)
      for (let j = i + 1; j < base.length; j++)
        for (const d of "019:") out.push(once.slice(0, j) + d + once.slice(j + 1))
    }
  return out
}

/** Field values on and around their limits. */
const edges = (): Array<string> => {
  const out: Array<string> = []
  for (const y of ["0000", "0099", "0100", "1970", "2026", "9999"])
    for (const m of ["00", "01", "02", "12", "13", "19"])
      for (const d of ["00", "01", "28", "29", "30", "31", "32"])
        for (const h of ["00", "23", "24"])
          for (const s of ["00", "59", "60", "61"]) out.push(`${y}-${m}-${d}T${h}:59:${s}.000Z`)
  return out
}

const inputs = [
  ...mutations(),
  ...edges(),
  "2026-01-15T12:34:56Z",
  "2026-01-15T12:34:56.7Z",
  "2026-01-15T12:34:56.789+02:00",
  "2026-01-15t12:34:56.789z",
  "",
  "not a date"
]

describe("DateTime", () => {
  it("isDateTime accepts exactly what the RFC 3339 regex accepts", () => {
    const disagree = inputs.filter((s) => isDateTime(s) !== DATE_TIME.test(s))
    expect(disagree).toEqual([])
    expect(isDateTime(base)).toBe(true)
    expect(isDateTime(20260115)).toBe(false)
  })

  it("timeOf gives what Date.parse gives (NaN alike)", () => {
    const same = (a: number, b: number) => a === b || (Number.isNaN(a) && Number.isNaN(b))
    const disagree = inputs.filter((s) => !same(timeOf(s), Date.parse(s)))
    expect(disagree).toEqual([])
    expect(timeOf(base)).toBe(Date.UTC(2026, 0, 15, 12, 34, 56, 789))
  })
})
