import { describe, expect, it } from "@effect/vitest"
import type { Event } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { Config, Entries } from "../src/index.ts"

const settings = Schema.decodeUnknownSync(Config.Config)({ eventBus: "workos-events" })
const example = examples["dsync.user.created"] as Event.Any

const entry = (over: Partial<Entries.Entry> = {}): Entries.Entry => ({
  Source: "workos",
  DetailType: "dsync.user.created",
  Detail: "{}",
  EventBusName: "a-bus-name-that-does-not-count",
  ...over
})

describe("Entries.size", () => {
  it("is 14 bytes for Time plus the UTF-8 bytes of Source, DetailType, Detail and Resources", () => {
    expect(Entries.size(entry())).toBe(6 + 18 + 2)
    expect(Entries.size(entry({ Time: new Date(0) }))).toBe(14 + 6 + 18 + 2)
    // "é" is 2 bytes, "€" 3 and "😀" 4 in UTF-8, though 1, 1 and 2 UTF-16 units.
    expect(Entries.size(entry({ Detail: '{"n":"é€😀"}' }))).toBe(6 + 18 + 8 + 2 + 3 + 4)
    expect(Entries.size(entry({ Resources: ["arn:a", "arn:bc"] }))).toBe(6 + 18 + 2 + 5 + 6)
  })
})

describe("Entries.encoder", () => {
  it("makes the event as WorkOS sent it the Detail, typed and timed by it", () => {
    const withExtra = { ...example, a_field_the_spec_lacks: { kept: true } } as unknown as Event.Any
    const encoded = Result.getOrThrow(Entries.encoder(settings)(withExtra))
    expect(encoded.entry).toEqual({
      Source: "workos",
      DetailType: "dsync.user.created",
      Detail: JSON.stringify(withExtra),
      EventBusName: "workos-events",
      Time: new Date(example.created_at)
    })
    expect(encoded.size).toBe(Entries.size(encoded.entry))
    expect(JSON.parse(encoded.entry.Detail).a_field_the_spec_lacks).toEqual({ kept: true })
  })

  it("sends only data, a templated detail-type and resources when configured", () => {
    const encode = Entries.encoder({
      ...settings,
      detail: "data",
      detailType: "WorkOS: {{ event }}!",
      resources: ["arn:aws:iam::123456789012:role/x"]
    })
    const { entry } = Result.getOrThrow(encode(example))
    expect(entry.Detail).toBe(JSON.stringify(example.data))
    expect(entry.DetailType).toBe("WorkOS: dsync.user.created!")
    expect(entry.Resources).toEqual(["arn:aws:iam::123456789012:role/x"])
  })

  it("an event that breaks the spec goes as WorkOS sent it; with detail: data, only when it has a data object", () => {
    const { resource_type_slug: _, ...data } = examples["organization_role.created"].data
    const drifted = { ...examples["organization_role.created"], data } as Event.Any
    expect(Result.getOrThrow(Entries.encoder(settings)(drifted)).entry.Detail).toBe(
      JSON.stringify(drifted)
    )
    const encodeData = Entries.encoder({ ...settings, detail: "data" })
    expect(Result.getOrThrow(encodeData(drifted)).entry.Detail).toBe(JSON.stringify(data))
    for (const broken of [{ data: undefined }, { data: null }, { data: [1] }, { data: "x" }]) {
      const event = { ...example, ...broken } as unknown as Event.Any
      expect(Result.getOrThrow(Entries.encoder(settings)(event)).entry.Detail).toBe(
        JSON.stringify(event)
      )
      const result = encodeData(event)
      expect(Result.isFailure(result) && result.failure).toBe(
        `event ${example.id} (dsync.user.created) has no data object to send as the detail (detail: data); it does not match the spec`
      )
    }
    // No time WorkOS sent that is one: no Time, and AWS uses the time it receives it.
    const untimed = { ...example, created_at: "yesterday" } as Event.Any
    expect(Result.getOrThrow(Entries.encoder(settings)(untimed)).entry.Time).toBeUndefined()
  })

  it("refuses a detail-type over 128 characters, with the event and the length", () => {
    const fits = Entries.encoder({ ...settings, detailType: `${"x".repeat(110)}{{event}}` })
    expect(Result.getOrThrow(fits(example)).entry.DetailType).toHaveLength(128)
    const over = Entries.encoder({ ...settings, detailType: `${"x".repeat(111)}{{event}}` })
    const result = over(example)
    expect(Result.isFailure(result) && result.failure).toBe(
      `event ${example.id}: detail-type "${"x".repeat(111)}dsync.user.created" is 129 characters; EventBridge allows at most 128`
    )
  })

  it("refuses an event that cannot fit a request on its own, and takes one that just fits", () => {
    const encode = Entries.encoder(settings)
    const base = Result.getOrThrow(
      encode({ ...example, data: { ...example.data, padding: "" } } as Event.Any)
    )
    const fits = {
      ...example,
      data: { ...example.data, padding: "x".repeat(Entries.maxRequestBytes - base.size) }
    }
    expect(Result.getOrThrow(encode(fits as Event.Any)).size).toBe(Entries.maxRequestBytes)
    const over = { ...fits, data: { ...fits.data, padding: `${fits.data.padding}x` } }
    const result = encode(over as Event.Any)
    expect(Result.isFailure(result) && result.failure).toBe(
      `event ${example.id} (dsync.user.created) is ${Entries.maxRequestBytes + 1} bytes as an EventBridge entry; a PutEvents request holds at most 1048576 bytes (1 MiB)`
    )
  })
})

describe("Entries.pack", () => {
  const sized = (...sizes: Array<number>) => sizes.map((size, id) => ({ id, size }))
  const ids = (requests: Array<Array<{ id: number }>>) => requests.map((r) => r.map((x) => x.id))

  it("puts at most 10 entries in a request, in order", () => {
    const requests = Entries.pack(sized(...new Array(25).fill(100)))
    expect(requests.map((r) => r.length)).toEqual([10, 10, 5])
    expect(requests.flat().map((x) => x.id)).toEqual([...Array(25).keys()])
  })

  it("starts a new request before 1 MiB is exceeded; exactly 1 MiB fits", () => {
    const half = Entries.maxRequestBytes / 2
    expect(ids(Entries.pack(sized(half, half, 1)))).toEqual([[0, 1], [2]])
    expect(ids(Entries.pack(sized(half, half + 1, half - 1)))).toEqual([[0], [1, 2]])
    expect(ids(Entries.pack(sized(Entries.maxRequestBytes, 1, 1)))).toEqual([[0], [1, 2]])
  })

  it("packs nothing into no request", () => {
    expect(Entries.pack([])).toEqual([])
  })
})
