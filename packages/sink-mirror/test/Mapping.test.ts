import { describe, expect, it } from "@effect/vitest"
import type { Event } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import * as Mapping from "../src/Mapping.ts"
import { history, random } from "./workload.ts"

const event = (type: string, patch: Record<string, unknown> = {}): Event.Any =>
  ({ ...(examples as any)[type], ...patch }) as Event.Any

describe("Mapping", () => {
  it("maps every event type it lists to a row of its table", () => {
    for (const [type, rule] of Object.entries(Mapping.rules)) {
      const rows = Mapping.rowsOf(event(type))
      expect(rows.length, type).toBeGreaterThan(0)
      expect(rows[0]!.table, type).toBe(rule.table)
      expect(rows[0]!.deletedAt !== null, type).toBe(rule.deletes)
      expect(rows[0]!.eventId).toBe((examples as any)[type].id)
    }
  })

  it("ignores types it does not use, without rejecting them", () => {
    for (const type of Object.keys(examples)) {
      if (type in Mapping.rules) continue
      expect(Mapping.rowsOf(event(type)), type).toEqual([])
      expect(Mapping.problem(event(type)), type).toBeUndefined()
    }
    const unknown = {
      object: "event",
      id: "event_x",
      event: "brand.new",
      data: {},
      created_at: "2026-01-01T00:00:00Z"
    }
    expect(Mapping.rowsOf(unknown as Event.Any)).toEqual([])
  })

  it("keeps an organization's domains and leaves previous_attributes out", () => {
    const rows = Mapping.rowsOf(event("organization.created"))
    expect(rows.map((r) => r.table)).toEqual(["organizations", "organization_domains"])
    const updated = Mapping.rowsOf(event("dsync.user.updated"))
    expect("previous_attributes" in updated[0]!.object).toBe(false)
    expect(updated[0]!.object.email).toBe("marcelina.davis@example.com")
  })

  it("keys a group membership by group and user", () => {
    const [row] = Mapping.rowsOf(event("dsync.group.user_added"))
    expect(row!.id).toBe(
      "directory_group_01E1JJS84MFPPQ3G655FHTKX6Z:directory_user_01E1JG7J09H96KYP8HM9B0G5SJ"
    )
    expect(row!.object).toMatchObject({ group_id: "directory_group_01E1JJS84MFPPQ3G655FHTKX6Z" })
  })

  it("says why an event it uses cannot be applied", () => {
    expect(Mapping.problem(event("user.updated", { data: { name: "x" } }))).toBe(
      "data.id is missing"
    )
    expect(Mapping.problem(event("user.updated", { created_at: "yesterday" }))).toBe(
      "created_at is not a time"
    )
    expect(Mapping.problem(event("dsync.group.user_added", { data: { user: {} } }))).toMatch(
      /data.user.id/
    )
  })

  it("merge is commutative and associative: any order of a row's versions folds to the same row", () => {
    const events = history(3000, 7)
    const inOrder = Mapping.fold(events)
    const next = random(3)
    for (let round = 0; round < 5; round++) {
      const shuffled = [...events, ...events.filter(() => next() < 0.2)].sort(() => next() - 0.5)
      const folded = new Map(Mapping.fold(shuffled).map((r) => [`${r.table}:${r.id}`, r]))
      expect(folded.size).toBe(inOrder.length)
      for (const row of inOrder) expect(folded.get(`${row.table}:${row.id}`)).toEqual(row)
    }
  })

  it("a delete is final; a group membership comes back when added again later", () => {
    const deleted = event("user.deleted", { id: "event_2", created_at: "2026-02-01T00:00:00.000Z" })
    const lateUpdate = event("user.updated", {
      id: "event_1",
      created_at: "2026-01-01T00:00:00.000Z"
    })
    const laterUpdate = event("user.updated", {
      id: "event_3",
      created_at: "2026-03-01T00:00:00.000Z"
    })
    for (const order of [
      [deleted, lateUpdate, laterUpdate],
      [laterUpdate, lateUpdate, deleted]
    ]) {
      const [row] = Mapping.fold(order)
      expect(row!.deletedAt).toBe("2026-02-01T00:00:00.000Z")
    }
    const removed = event("dsync.group.user_removed", {
      id: "event_2",
      created_at: "2026-02-01T00:00:00.000Z"
    })
    const added = event("dsync.group.user_added", {
      id: "event_1",
      created_at: "2026-01-01T00:00:00.000Z"
    })
    const addedAgain = event("dsync.group.user_added", {
      id: "event_3",
      created_at: "2026-03-01T00:00:00.000Z"
    })
    expect(Mapping.fold([removed, added])[0]!.deletedAt).toBe("2026-02-01T00:00:00.000Z")
    expect(Mapping.fold([addedAgain, removed, added])[0]!.deletedAt).toBeNull()
  })
})
