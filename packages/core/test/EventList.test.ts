import { describe, expect, it } from "@effect/vitest"
import * as Result from "effect/Result"
import { examples } from "../src/Examples.ts"
import { EventList } from "../src/index.ts"

const page = (data: Array<unknown>, after: string | null = "event_2") =>
  JSON.stringify({ object: "list", data, list_metadata: { after } })

describe("EventList", () => {
  it("decodes each event of a page on its own: one bad event never fails the page", () => {
    const good = examples["user.created"]
    const broken = {
      ...examples["user.created"],
      id: "event_bad",
      data: { ...examples["user.created"].data, email: 7 }
    }
    const unknown = {
      object: "event",
      id: "event_new",
      event: "brand.new",
      data: {},
      created_at: "2026-01-01T00:00:00Z"
    }
    const list = Result.getOrThrow(EventList.decodeJson(page([good, broken, unknown])))
    expect(list.list_metadata.after).toBe("event_2")
    expect(list.data.map((r) => r._tag)).toEqual(["Success", "Failure", "Success"])
    const failure = list.data[1]!
    expect(Result.isFailure(failure) && failure.failure).toMatchObject({
      id: "event_bad",
      type: "user.created",
      path: "data.email"
    })
  })

  it("reads the end of the list", () => {
    const list = Result.getOrThrow(EventList.decodeJson(page([], null)))
    expect(list.data).toEqual([])
    expect(list.list_metadata.after).toBeNull()
  })

  it.each([
    ["<html>502 Bad Gateway</html>", /not JSON/],
    ["[]", /expected a JSON object/],
    [JSON.stringify({ object: "event", data: [] }), /"object" to be "list"/],
    [
      JSON.stringify({ object: "list", data: {}, list_metadata: { after: null } }),
      /"data" to be an array/
    ],
    [JSON.stringify({ object: "list", data: [] }), /"list_metadata" to be an object/],
    [
      JSON.stringify({ object: "list", data: [], list_metadata: { after: 3 } }),
      /"list_metadata.after"/
    ]
  ])("says why %s is not an event list", (body, reason) => {
    const decoded = EventList.decodeJson(body)
    expect(Result.isFailure(decoded)).toBe(true)
    const error = (decoded as Result.Failure<never, EventList.EventListDecodeError>).failure
    expect(error.reason).toMatch(reason)
    expect(error.excerpt).toBe(body)
    expect(error.message).toContain(error.reason)
  })
})
