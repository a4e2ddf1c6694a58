import { describe, expect, it } from "@effect/vitest"
import { examples } from "@workos-relay/core/Examples"
import * as ConsoleSink from "../src/ConsoleSink.ts"

describe("ConsoleSink", () => {
  it("prints one readable line per event: time, type, id, organization, a summary", () => {
    const event = examples["dsync.user.created"] as any
    const line = ConsoleSink.formatLine(event)
    expect(line.startsWith(`${event.created_at}  dsync.user.created`)).toBe(true)
    expect(line).toContain(event.id)
    expect(line).toContain(event.data.organization_id)
    expect(line).not.toContain("\n")
  })

  it("names the organization of organization events by their own id", () => {
    const event = examples["organization.created"] as any
    expect(ConsoleSink.formatLine(event)).toContain(`${event.id}  ${event.data.id}`)
  })
})
