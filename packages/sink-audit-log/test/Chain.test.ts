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
