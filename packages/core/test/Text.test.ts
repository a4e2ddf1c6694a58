import { describe, expect, it } from "@effect/vitest"
import { Text } from "../src/index.ts"

describe("Text", () => {
  it("parses durations in every unit, names and abbreviations alike; a bare number is milliseconds", () => {
    expect(Text.parseDuration("500ms")).toBe(500)
    expect(Text.parseDuration("20 millis")).toBe(20)
    expect(Text.parseDuration("5s")).toBe(5000)
    expect(Text.parseDuration("1.5 seconds")).toBe(1500)
    expect(Text.parseDuration("2m")).toBe(120_000)
    expect(Text.parseDuration("2 Minutes")).toBe(120_000)
    expect(Text.parseDuration("1h")).toBe(3_600_000)
    expect(Text.parseDuration(" 400 days ")).toBe(400 * 86_400_000)
    expect(Text.parseDuration("2w")).toBe(14 * 86_400_000)
    expect(Text.parseDuration("250")).toBe(250)
    expect(Text.parseDuration(0)).toBe(0)
    expect(Text.parseDuration(1500)).toBe(1500)
  })

  it("rejects what is not a duration", () => {
    expect(Text.parseDuration("soon")).toBeUndefined()
    expect(Text.parseDuration("5 fortnights")).toBeUndefined()
    expect(Text.parseDuration("-5s")).toBeUndefined()
    expect(Text.parseDuration("1h30m")).toBeUndefined()
    expect(Text.parseDuration("")).toBeUndefined()
    expect(Text.parseDuration(-1)).toBeUndefined()
    expect(Text.parseDuration(Number.POSITIVE_INFINITY)).toBeUndefined()
  })

  it("measures edit distance", () => {
    expect(Text.distance("kitten", "sitting")).toBe(3)
    expect(Text.distance("", "abc")).toBe(3)
    expect(Text.distance("same", "same")).toBe(0)
  })

  it("suggests the closest names, ignoring case, only when plausibly a typo", () => {
    expect(Text.closest("consol", ["console", "slack", "eventbridge"])).toEqual(["console"])
    expect(Text.closest("SLACK", ["console", "slack"])).toEqual(["slack"])
    // Ties keep the candidates' order, up to the limit.
    expect(Text.closest("cat", ["bat", "hat", "rat", "dog"], 2)).toEqual(["bat", "hat"])
    // A better candidate later replaces earlier ties.
    expect(Text.closest("cat", ["bat", "hat", "cat"], 2)).toEqual(["cat"])
    expect(Text.closest("zzzzzzzz", ["console", "slack"])).toEqual([])
    expect(Text.closest("x", [])).toEqual([])
  })
})

describe("Text.parseInstant", () => {
  const now = Date.parse("2026-06-10T00:00:00Z")
  it("reads an ISO-8601 time or a duration ago", () => {
    expect(Text.parseInstant("7d", now)?.toISOString()).toBe("2026-06-03T00:00:00.000Z")
    expect(Text.parseInstant("90 minutes", now)?.toISOString()).toBe("2026-06-09T22:30:00.000Z")
    expect(Text.parseInstant("2026-01-31", now)?.toISOString()).toBe("2026-01-31T00:00:00.000Z")
    // Days that do not exist are not rolled over into the next month.
    expect(Text.parseInstant("2026-02-30T00:00:00Z", now)).toBeUndefined()
    expect(Text.parseInstant("2026-04-31", now)).toBeUndefined()
    expect(Text.parseInstant("2028-02-29", now)?.toISOString()).toBe("2028-02-29T00:00:00.000Z")
    expect(Text.parseInstant("2026-01-31T08:00:00Z", now)?.toISOString()).toBe(
      "2026-01-31T08:00:00.000Z"
    )
  })
  it("is undefined for anything else", () => {
    for (const text of [
      "nonsense",
      "yesterday",
      "0h",
      "-5d",
      "",
      "10",
      "March 7, 2026",
      "2026-13-45"
    ])
      expect(Text.parseInstant(text, now), text).toBeUndefined()
  })
})
