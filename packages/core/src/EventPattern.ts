/**
 * Event type patterns: `*` matches any run of characters, dots included
 * (`"dsync.*"`, `"authentication.*_failed"`, `"*"`).
 *
 * A pattern selects the known types it matches, and its TypeScript type narrows to
 * exactly those (`Matching<["dsync.user.*"]>` is the union of the `dsync.user.` events).
 * Only the catch-all `"*"` also selects types the spec does not know yet, so a
 * handler's type never claims less than what it may receive.
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import type { Any, Of, Type } from "./Event.ts"
import { eventTypes } from "./Event.ts"
import { closest } from "./Text.ts"

// ---------------------------------------------------------------------------
// Type level

/** Whether the name `S` matches the glob `P`. */
type Glob<S extends string, P extends string> = P extends `${infer Head}*${infer Rest}`
  ? S extends `${Head}${infer Tail}`
    ? Star<Tail, Rest>
    : false
  : S extends P
    ? true
    : false

/** `*` followed by `Rest` matches `S` when some suffix of `S` matches `Rest`. */
type Star<S extends string, Rest extends string> = Rest extends ""
  ? true
  : Glob<S, Rest> extends true
    ? true
    : S extends `${infer _First}${infer Tail}`
      ? Star<Tail, Rest>
      : false

/** The known type names a pattern (or a union of patterns) matches. */
export type TypesOf<P extends string> = {
  // `Glob` distributes over a union of patterns: a name is in when any of them says true.
  [T in Type]: true extends Glob<T, P> ? T : never
}[Type]

/**
 * The events a list of patterns selects: exactly the matching known events, or
 * every event (`Any`) when `"*"` is among them, the patterns are not literal, or
 * there are none (no filter).
 */
export type Matching<Ps extends ReadonlyArray<string>> = [Ps[number]] extends [never]
  ? Any
  : string extends Ps[number]
    ? Any
    : "*" extends Ps[number]
      ? Any
      : Of<TypesOf<Ps[number]>>

// ---------------------------------------------------------------------------
// Run time

/** A pattern that matches no known event type; `suggestions` are the closest names. */
export class UnknownPatternError extends Data.TaggedError("UnknownPatternError")<{
  readonly pattern: string
  readonly suggestions: ReadonlyArray<string>
}> {
  override get message(): string {
    const hint =
      this.suggestions.length > 0
        ? `; did you mean ${this.suggestions.map((s) => `"${s}"`).join(" or ")}?`
        : ""
    return `event pattern "${this.pattern}" matches no WorkOS event type${hint}`
  }
}

const toRegExp = (pattern: string): RegExp =>
  new RegExp(
    `^${pattern
      .split("*")
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`
  )

/** Whether one pattern matches one type name (known or not). */
export const matchesName = (pattern: string, name: string): boolean =>
  pattern === "*" || (pattern.includes("*") ? toRegExp(pattern).test(name) : pattern === name)

/** The known types a list of patterns selects, in catalogue order. */
export const expand = (patterns: ReadonlyArray<string>): ReadonlyArray<Type> =>
  eventTypes.filter((name) => patterns.some((pattern) => matchesName(pattern, name)))

/**
 * Checks every pattern against the catalogue: each must match at least one known
 * type. Returns the patterns, typed, or the first that matches nothing with the
 * closest known names.
 */
export const validate = <const Ps extends ReadonlyArray<string>>(
  patterns: Ps
): Result.Result<Ps, UnknownPatternError> => {
  for (const pattern of patterns) {
    if (!eventTypes.some((name) => matchesName(pattern, name))) {
      return Result.fail(new UnknownPatternError({ pattern, suggestions: suggest(pattern) }))
    }
  }
  return Result.succeed(patterns)
}

/**
 * A predicate over events for a list of patterns, narrowing to `Matching<Ps>`.
 * Compiled once: a lookup in a set of known names (plus a test for `*`).
 */
export const matcher = <const Ps extends ReadonlyArray<string>>(
  patterns: Ps
): ((event: Any) => event is Matching<Ps>) => {
  if (patterns.includes("*")) return (_event): _event is Matching<Ps> => true
  const selected = new Set<string>(expand(patterns))
  return (event): event is Matching<Ps> => selected.has(event.event)
}

/**
 * What a misspelt pattern most likely meant (at most three): for a prefix pattern
 * (`dsync.usr.*`), the closest prefixes of known names as patterns (`dsync.user.*`);
 * otherwise the closest known names.
 */
export const suggest = (pattern: string): ReadonlyArray<string> => {
  if (pattern.length > 1 && pattern.indexOf("*") === pattern.length - 1) {
    const prefixes = closest(pattern.slice(0, -1), namePrefixes(), 3)
    if (prefixes.length > 0) return prefixes.map((prefix) => `${prefix}*`)
  }
  return closest(pattern.replaceAll("*", ""), eventTypes, 3)
}

let prefixes: ReadonlyArray<string> | undefined
/** Every prefix of a known name that ends at a dot: `dsync.`, `dsync.user.`, ... */
const namePrefixes = (): ReadonlyArray<string> => {
  prefixes ??= [
    ...new Set(
      eventTypes.flatMap((name) => {
        const parts = name.split(".")
        return parts.slice(1).map((_, i) => `${parts.slice(0, i + 1).join(".")}.`)
      })
    )
  ]
  return prefixes
}
