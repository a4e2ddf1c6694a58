import { describe, expect, it } from "@effect/vitest"
import { Event, Sink } from "@workos-relay/core"
import * as Result from "effect/Result"
import * as Chain from "../src/Chain.ts"
import * as Record from "../src/Record.ts"
import { all, drifted, example } from "./fixtures.ts"

/** The event a raw sink gets for this input, which must break the spec. */
const marked = (input: unknown): Event.Any => {
  const decoded = Event.decode(input)
  if (Result.isSuccess(decoded)) throw new Error("expected it to break the spec")
  return Sink.mismatched(decoded.failure)!
}

describe("Record.fromEvent, for an event that breaks the spec", () => {
  it("keeps it as WorkOS sent it, with where it breaks the spec", () => {
    const event = drifted(1)[0]!
    const text = JSON.stringify(event)
    const record = Record.fromEvent(event)
    expect(record.event).toBe(event)
    expect(JSON.stringify(record.event)).toBe(text)
    expect(record.type).toBe("organization_role.created")
    expect(record.schema_mismatch).toBe("data.resource_type_slug: required field is missing")
    expect(Record.unkeepable(record)).toBeUndefined()
    // An event that matches the spec has no schema_mismatch key at all, and its hash is
    // what it was before the field existed.
    const plain = Record.fromEvent(example("user.created"))
    expect("schema_mismatch" in plain).toBe(false)
    expect(Chain.canonicalContent(plain)).not.toContain("schema_mismatch")
    expect(Chain.canonicalContent(record)).toContain(
      '"schema_mismatch":"data.resource_type_slug: required field is missing"'
    )
  })

  it("reads whatever the payload holds without failing", () => {
    for (const data of [null, 42, "text", [1, 2], { id: 7, user_id: { not: "a string" } }]) {
      const event = marked({ ...example("authentication.password_failed"), data, context: 5 })
      const record = Record.fromEvent(event)
      expect(record.event).toBe(event)
      expect(record.actor).toBeNull()
      expect(record.schema_mismatch).toBeDefined()
    }
  })

  it("one without a created_at that is a time cannot be kept, saying why", () => {
    for (const created_at of [undefined, "yesterday", 42]) {
      const event = marked({ ...example("user.created"), created_at })
      const record = Record.fromEvent(event)
      expect(Record.unkeepable(record)).toBe(
        `event ${event.id} (user.created) has no created_at that is a time (got ${JSON.stringify(created_at) ?? "none"}): an audit record needs one`
      )
    }
  })
})

describe("Record.fromEvent", () => {
  it("keeps the event as WorkOS sent it, unknown fields included", () => {
    const event = { ...example("user.created"), extra: { new: 1 } } as any
    const record = Record.fromEvent(event)
    expect(record.event).toBe(event)
    expect(record.id).toBe(event.id)
    expect(record.type).toBe("user.created")
    expect(record.created_at).toBe("2026-01-15T12:00:00.000Z")
  })

  it("takes the actor from context.actor when WorkOS gives one", () => {
    const record = Record.fromEvent(example("organization.updated"))
    expect(record.actor).toEqual({
      id: "user_01EHWNCE74X7JSDV0X3SZ3KJNY",
      name: "Jane Doe",
      source: "api"
    })
  })

  it("falls back to the payload's user fields", () => {
    const event = example("authentication.password_failed") as any
    delete event.context
    const record = Record.fromEvent(event)
    expect(record.actor).toEqual({ id: event.data.user_id, name: event.data.email, source: null })
    expect(record.targets).toEqual([{ type: "user", id: event.data.user_id }])
    expect(record.ip_address).toBe(event.data.ip_address)
    expect(record.user_agent).toBe(event.data.user_agent)
  })

  it("reads vault actors from actor_* fields and an impersonator as the session's actor", () => {
    const vault = example("vault.data.read") as any
    delete vault.context
    expect(Record.fromEvent(vault).actor).toEqual({
      id: vault.data.actor_id,
      name: vault.data.actor_name,
      source: vault.data.actor_source
    })
    expect(Record.fromEvent(vault).targets).toContainEqual({
      type: "vault_object",
      id: vault.data.kv_name
    })
    const session = example("session.created") as any
    delete session.context
    expect(Record.fromEvent(session).actor).toEqual({
      id: null,
      name: "admin@foocorp.com",
      source: "impersonation"
    })
  })

  it("names what was acted on per family", () => {
    const targets = (type: string) => Record.fromEvent(example(type)).targets
    const user = example("dsync.group.user_added") as any
    expect(targets("dsync.group.user_added")).toEqual([
      { type: "directory_user", id: user.data.user.id },
      { type: "directory_group", id: user.data.group.id },
      { type: "directory", id: user.data.directory_id }
    ])
    const dsyncUser = example("dsync.user.created") as any
    expect(targets("dsync.user.created")).toEqual([
      { type: "directory_user", id: dsyncUser.data.id },
      { type: "directory", id: dsyncUser.data.directory_id }
    ])
    const org = example("organization.created") as any
    expect(targets("organization.created")).toEqual([{ type: "organization", id: org.data.id }])
    expect(Record.fromEvent(org).organization_id).toBe(org.data.id)
    const membership = example("organization_membership.created") as any
    expect(targets("organization_membership.created")).toEqual([
      { type: "organization_membership", id: membership.data.id },
      { type: "user", id: membership.data.user_id }
    ])
    const cert = example("connection.saml_certificate_renewed") as any
    expect(targets("connection.saml_certificate_renewed")).toEqual([
      { type: "connection", id: cert.data.connection.id }
    ])
  })

  it("maps every example type without throwing, to well-formed targets", () => {
    for (const event of all) {
      const record = Record.fromEvent(event)
      for (const t of record.targets) {
        expect(typeof t.type).toBe("string")
        expect(t.id.length).toBeGreaterThan(0)
      }
    }
    const withTargets = all.filter((e) => Record.fromEvent(e).targets.length > 0).length
    expect(withTargets).toBeGreaterThan(all.length * 0.9)
  })

  it("maps an event type the spec does not know yet by its payload object", () => {
    const record = Record.fromEvent({
      object: "event",
      id: "event_x",
      event: "widget.created",
      data: { object: "widget", id: "widget_1", organization_id: "org_1" },
      created_at: "2026-05-01T00:00:00Z"
    })
    expect(record.targets).toEqual([{ type: "widget", id: "widget_1" }])
    expect(record.organization_id).toBe("org_1")
    expect(record.created_at).toBe("2026-05-01T00:00:00.000Z")
    expect(record.actor).toBeNull()
  })
})

describe("Record.normalizeTime", () => {
  it("writes every time as toISOString does, keeping those already in that form", () => {
    const viaDate = (time: string) => {
      const ms = Date.parse(time)
      return Number.isNaN(ms) ? time : new Date(ms).toISOString()
    }
    const times = [
      "2026-01-02T03:04:05.678Z",
      "2024-02-29T23:59:59.999Z",
      "2023-02-29T00:00:00.000Z",
      "1900-02-29T00:00:00.000Z",
      "2000-02-29T00:00:00.000Z",
      "2026-04-31T00:00:00.000Z",
      "2026-13-01T00:00:00.000Z",
      "2026-00-10T00:00:00.000Z",
      "2026-01-00T00:00:00.000Z",
      "2026-01-01T24:00:00.000Z",
      "2026-01-01T23:60:00.000Z",
      "2026-01-01T23:59:60.000Z",
      "0000-01-01T00:00:00.000Z",
      "9999-12-31T23:59:59.999Z",
      "2026-01-02T03:04:05Z",
      "2026-01-02T03:04:05.6789Z",
      "2026-01-02T03:04:05.678+02:00",
      "2026-01-02 03:04:05.678Z",
      "not a time",
      ""
    ]
    // And a year of random times, in and out of the normal form.
    for (let i = 0; i < 2000; i++) {
      const t = new Date(Date.UTC(2023, 0, 1) + Math.floor(Math.random() * 4 * 365 * 86_400_000))
      times.push(t.toISOString(), t.toISOString().replace("Z", "+00:00"))
    }
    for (const time of times) expect(Record.normalizeTime(time)).toBe(viaDate(time))
  })
})
