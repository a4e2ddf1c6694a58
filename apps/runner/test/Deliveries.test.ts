import { describe, expect, it } from "@effect/vitest"
import { Deliveries } from "../src/webhooks/Deliveries.ts"

const read = (deliveries: Deliveries, ...ids: Array<string>) =>
  deliveries.read(ids.map((id) => ({ _tag: "Event", event: { id } }) as never))

describe("Deliveries.sync (the store's pending rows, every runner's)", () => {
  it("watches rows received elsewhere, returns those already read, drops those seen elsewhere", () => {
    const deliveries = new Deliveries()
    deliveries.received("event_mine", "user.created", 1)
    deliveries.received("event_taken_over", "user.created", 2)
    read(deliveries, "event_read_here")
    const alreadyRead = deliveries.sync([
      { id: "event_mine", type: "user.created", receivedAt: 1 },
      { id: "event_from_standby", type: "user.updated", receivedAt: 3 },
      { id: "event_read_here", type: "user.created", receivedAt: 4 }
    ])
    expect(alreadyRead).toEqual(["event_read_here"])
    // `event_taken_over` is no longer pending in the store: another runner read it.
    expect(deliveries.pendingCount()).toBe(2)
    expect(
      deliveries
        .overdue(0, 10)
        .all.map((p) => p.id)
        .sort()
    ).toEqual(["event_from_standby", "event_mine"])
    // Once read, a row from the standby is seen like any other.
    expect(read(deliveries, "event_from_standby")).toEqual(["event_from_standby"])
  })
})
