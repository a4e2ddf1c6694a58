// The decoder trusts the generated lean checks on its hot path and the Effect Schemas
// to explain failures: both must accept exactly the same values. This test mutates
// every node of every example in several ways and asks both.
import { describe, expect, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import { examples } from "../src/Examples.ts"
import { checks } from "../src/generated/Checks.ts"
import { Event } from "../src/index.ts"

type Path = ReadonlyArray<string | number>

const pathsOf = (value: unknown, path: Path = []): Array<Path> => {
  if (typeof value !== "object" || value === null) return [path]
  const children = Object.entries(value).flatMap(([key, child]) =>
    pathsOf(child, [...path, Array.isArray(value) ? Number(key) : key])
  )
  return [path, ...children]
}

const mutations: ReadonlyArray<[string, (parent: any, key: string | number) => void]> = [
  [
    "removed",
    (parent, key) => (Array.isArray(parent) ? parent.splice(Number(key), 1) : delete parent[key])
  ],
  ["null", (parent, key) => (parent[key] = null)],
  ["number", (parent, key) => (parent[key] = 42)],
  ["float", (parent, key) => (parent[key] = 1.5)],
  ["string", (parent, key) => (parent[key] = "not-a-date")],
  ["date", (parent, key) => (parent[key] = "2026-01-01T00:00:00Z")],
  ["boolean", (parent, key) => (parent[key] = false)],
  ["array", (parent, key) => (parent[key] = [])],
  ["object", (parent, key) => (parent[key] = {})],
  ["long string", (parent, key) => (parent[key] = "x".repeat(700))],
  ["extra key", (parent, key) => (parent[key] = { ...parent[key], ["k".repeat(41)]: "v" })]
]

describe("generated lean checks", () => {
  it.each(Object.keys(examples) as Array<Event.Type>)(
    "agree with the Effect Schema of %s",
    (type) => {
      const check = checks[type]!
      const is = Schema.is(Event.schemas[type] as Schema.Top)
      const example = (examples as Record<string, unknown>)[type]
      let accepted = 0
      let rejected = 0
      for (const path of pathsOf(example).filter((p) => p.length > 0)) {
        for (const [name, mutate] of mutations) {
          const mutated = structuredClone(example) as any
          const parent = path.slice(0, -1).reduce((node, key) => node[key], mutated)
          mutate(parent, path[path.length - 1]!)
          const verdict = check(mutated)
          expect(verdict, `${type} with ${path.join(".")} ${name}`).toBe(is(mutated))
          verdict ? accepted++ : rejected++
        }
      }
      // Both outcomes happen, so the comparison means something.
      expect(accepted).toBeGreaterThan(0)
      expect(rejected).toBeGreaterThan(0)
    }
  )
})
