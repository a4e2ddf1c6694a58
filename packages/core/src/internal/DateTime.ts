import * as Schema from "effect/Schema"

/**
 * An RFC 3339 date-time, as JSON Schema's `format: date-time` means it
 * (`2026-01-15T12:00:00.000Z`, `2026-01-15t12:00:00+02:00`).
 */
export const DATE_TIME =
  /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[Tt](?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d+)?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/

export const isDateTime = (v: unknown): boolean => typeof v === "string" && DATE_TIME.test(v)

/** A string in RFC 3339 date-time format; kept as the string WorkOS sent. */
export const DateTimeString = Schema.String.check(
  Schema.isPattern(DATE_TIME, { expected: "an RFC 3339 date-time string" })
).annotate({ identifier: "DateTimeString" })
