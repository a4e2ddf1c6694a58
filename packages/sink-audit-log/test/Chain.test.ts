import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import * as Chain from "../src/Chain.ts"
import * as Record from "../src/Record.ts"
import { events } from "./fixtures.ts"

describe("Chain", () => {
  it("canonical JSON sorts keys, drops whitespace and undefined, keeps array order", () => {
    expect(Chain.canonicalJson({ b: 1, a: [3, { d: null, c: "é\n" }], u: undefined })).toBe(
      '{"a":[3,{"c":"é\\n","d":null}],"b":1}'
    )
    expect(Chain.canonicalJson({ b: 1, B: 2, a: 0 })).toBe('{"B":2,"a":0,"b":1}')
    expect(Chain.canonicalJson(1.5e21)).toBe("1.5e+21")
  })

  it("canonical JSON is the same on the fast path and the definition's, for every kind of value", () => {
    // The definition (RFC 8785 for JSON values), written out piece by piece.
    const reference = (value: unknown): string => {
      if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null"
      if (Array.isArray(value))
        return `[${Array.from(value, (v) => (v === undefined ? "null" : reference(v))).join(",")}]`
      const object = value as { [key: string]: unknown }
      return `{${Object.keys(object)
        .sort()
        .filter((k) => object[k] !== undefined)
        .map((k) => `${JSON.stringify(k)}:${reference(object[k])}`)
        .join(",")}}`
    }
    const tricky: ReadonlyArray<unknown> = [
      ...events(120).map((e) => Chain.content(Record.fromEvent(e))),
      { b: { z: 1, a: [{ y: 2, x: undefined }, undefined, null] }, a: "\u2028\ud83d\ude00" },
      { "10": "ten", "9": "nine", a: 1 },
      { b: 1, "2": 2, "1": 1, "-1": 0, $: 3 },
      { z: 1, ["__proto__"]: { b: 2, a: 1 } },
      JSON.parse('{"z":1,"__proto__":{"b":2,"a":1}}'),
      // Keys in order, with a value inside that is not: copied from that value on.
      { a: 1, b: { d: 1, c: 2 }, c: [{ f: 1, e: 2 }], d: "x" },
      JSON.parse('{"__proto__":{"b":1,"a":2},"a":{"d":1,"c":2}}'),
      { é: 1, z: 2, Z: 3, "😀": 4, "\uffff": 5 },
      // Keys out of order: a few (sorted in place), and more than 32 (the engine's sort).
      Object.fromEntries(["m", "b", "ab", "a", "B", "aa", "_", "z1", "z"].map((k, i) => [k, i])),
      Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${(i * 7) % 40}`, i])),
      { d: new Date(0), n: Number.NaN, i: Number.POSITIVE_INFINITY, m: -0 },
      { f: () => 1, s: Symbol("s"), a: [() => 1] },
      { t: { toJSON: () => "x", a: 1 } },
      Object.assign(Object.create(null), { b: 1, a: 2 }),
      [1, [2, [3, { c: 3, b: 2 }]], "x", true, false, 1.5e21, 1e-7],
      "text",
      undefined,
      null
    ]
    for (const value of tricky) expect(Chain.canonicalJson(value)).toBe(reference(value))
  })

  it("hashes SHA-256 over the previous hash and the canonical JSON", () => {
    const record = Record.fromEvent(events(1)[0]!)
    const expected = createHash("sha256")
      .update(Chain.genesis + Chain.canonicalJson(Chain.content(record)))
      .digest("hex")
    expect(Chain.hash(Chain.genesis, record)).toBe(expected)
  })

  it("links records and verifies the result", async () => {
    const linked = Chain.link(Chain.genesisAnchor, events(5).map(Record.fromEvent))
    expect(linked.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5])
    expect(linked[1]!.prev_hash).toBe(linked[0]!.hash)
    const report = await Chain.walk({
      anchor: Chain.genesisAnchor,
      head: { seq: 5, hash: linked[4]!.hash, count: 5 },
      records: linked,
      again: () => linked
    })
    expect(report.problem).toBeNull()
    expect(report.records).toBe(5)
    expect(report.headHash).toBe(linked[4]!.hash)
  })
})
