import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { examples } from "../src/Examples.ts"
import { Event, EventPattern } from "../src/index.ts"

const clone = <A>(value: A): any => structuredClone(value) as any
const exampleEntries = Object.entries(examples) as Array<[Event.Type, unknown]>

/** The keys an object schema requires, read from the spec-generated Effect Schema. */
const requiredKeys = (type: Event.Type, at: "event" | "data"): ReadonlyArray<string> => {
  const schema = Event.schemas[type] as any
  const fields = at === "event" ? schema.fields : schema.fields.data.fields
  if (fields === undefined) return []
  return Object.entries(fields)
    .filter(([, field]) => (field as any).ast.context?.isOptional !== true)
    .map(([key]) => key)
}

describe("Event.decode", () => {
  it("knows every event type in the spec", () => {
    expect(Event.eventTypes.length).toBe(111)
    expect(exampleEntries.map(([type]) => type)).toEqual([...Event.eventTypes])
  })

  it.each(exampleEntries)(
    "decodes the spec example of %s and gives back the same JSON",
    (type, example) => {
      const decoded = Event.decode(clone(example))
      expect(Result.isSuccess(decoded)).toBe(true)
      const event = Result.getOrThrow(decoded)
      expect(event.event).toBe(type)
      expect(Event.isKnown(event)).toBe(true)
      expect(JSON.parse(JSON.stringify(Event.toJson(event)))).toEqual(example)
    }
  )

  it.each(exampleEntries)("%s: a missing required field is named in the error", (type, example) => {
    const missing = [
      ...requiredKeys(type, "event").map((key) => [key] as const),
      ...requiredKeys(type, "data").map((key) => ["data", key] as const)
    ]
    expect(missing.length).toBeGreaterThan(3)
    for (const path of missing) {
      const event = clone(example)
      if (path.length === 1) delete event[path[0]]
      else delete event.data[path[1]]
      const decoded = Event.decode(event)
      expect(Result.isFailure(decoded), path.join(".")).toBe(true)
      const error = Result.getFailure(decoded).pipe(
        (o) => (o as any).value as Event.EventDecodeError
      )
      expect(error.path).toBe(path.join("."))
      expect(error.type).toBe(path[0] === "event" ? undefined : type)
      if (path[0] !== "id") expect(error.id).toBe(event.id)
      expect(error.message).toContain(path.join("."))
    }
  })

  it.each(exampleEntries)(
    "%s: a field of the wrong type is named in the error",
    (type, example) => {
      for (const key of requiredKeys(type, "data")) {
        const event = clone(example)
        // A value no field of the spec accepts.
        event.data[key] = { wrong: true, list: [1] }
        if (
          Array.isArray((example as any).data[key]) ||
          typeof (example as any).data[key] === "object"
        ) {
          event.data[key] = 12345
        }
        const decoded = Event.decode(event)
        expect(Result.isFailure(decoded), key).toBe(true)
        const error = (Result.getFailure(decoded) as any).value as Event.EventDecodeError
        expect(error.path.startsWith(`data.${key}`), `${error.path} for ${key}`).toBe(true)
        expect(error.reason.length).toBeGreaterThan(0)
        expect(error.raw).toBe(event)
      }
    }
  )

  it("keeps fields the spec does not know, at every level", () => {
    const event = clone(examples["dsync.user.created"])
    event.brand_new_field = { nested: [1, 2, 3] }
    event.data.also_new = "kept"
    event.data.emails[0].label = "kept too"
    const decoded = Result.getOrThrow(Event.decode(event))
    expect(JSON.parse(JSON.stringify(decoded))).toEqual(event)
    expect((decoded as any).brand_new_field).toEqual({ nested: [1, 2, 3] })
  })

  it("passes through an event of a type the spec does not know, whole", () => {
    const event = {
      object: "event",
      id: "event_01NEW",
      event: "quantum.entanglement.observed",
      data: { anything: { goes: [true, null] } },
      created_at: "2026-11-01T10:00:00.123Z",
      context: { actor: { id: "user_1" } },
      future_field: 1
    }
    const decoded = Result.getOrThrow(Event.decode(event))
    expect(decoded).toBe(event)
    expect(Event.isKnown(decoded)).toBe(false)
  })

  it("rejects an unknown type whose envelope is broken, naming the field", () => {
    const error = (
      Result.getFailure(
        Event.decode({
          object: "event",
          id: "event_1",
          event: "new.type",
          data: [],
          created_at: "2026-01-01T00:00:00Z"
        })
      ) as any
    ).value as Event.EventDecodeError
    expect(error).toMatchObject({
      _tag: "EventDecodeError",
      id: "event_1",
      type: "new.type",
      path: "data"
    })
  })

  it("names what is wrong with something that is not an event", () => {
    for (const input of [null, 42, "event", [], {}, { event: 7 }]) {
      const decoded = Event.decode(input)
      expect(Result.isFailure(decoded)).toBe(true)
    }
    const error = (Result.getFailure(Event.decodeJson("{not json")) as any)
      .value as Event.EventDecodeError
    expect(error.reason).toMatch(/^not JSON/)
    expect(error.raw).toBe("{not json")
  })

  it("checks created_at is an RFC 3339 date-time and gives it as a Date", () => {
    const event = clone(examples["organization.created"])
    event.created_at = "2026-02-30 12:00"
    expect(
      ((Result.getFailure(Event.decode(event)) as any).value as Event.EventDecodeError).path
    ).toBe("created_at")
    event.created_at = "2026-03-04T05:06:07.089Z"
    const decoded = Result.getOrThrow(Event.decode(event))
    expect(Event.createdAt(decoded).getTime()).toBe(Date.UTC(2026, 2, 4, 5, 6, 7, 89))
    expect(decoded.created_at).toBe("2026-03-04T05:06:07.089Z")
  })

  it("types one event by its name", () => {
    expectTypeOf<Event.Of<"dsync.user.created">["event"]>().toEqualTypeOf<"dsync.user.created">()
    expectTypeOf<Event.Of<"dsync.user.created">["data"]["email"]>().toEqualTypeOf<string | null>()
    expectTypeOf<Event.Of<"authentication.sso_failed">["data"]["error"]>().toHaveProperty("code")
    // A known event's discriminant narrows the union.
    const handle = (event: Event.Event) =>
      event.event === "user.created" ? event.data.email : undefined
    expectTypeOf(handle).returns.toEqualTypeOf<string | undefined>()
  })
})

describe("Event.schemas and Event.Schema (built on first use)", () => {
  it("gives the same schema every time, and the union decodes every example", () => {
    expect(Event.schemas["dsync.user.created"]).toBe(Event.schemas["dsync.user.created"])
    expect(Object.keys(Event.schemas)).toEqual([...Event.eventTypes])
    for (const [, example] of exampleEntries)
      expect(Schema.is(Event.Schema)(clone(example))).toBe(true)
    expect(Schema.is(Event.Schema)({ object: "event", event: "dsync.user.created" })).toBe(false)
  })
})

describe("Event.pathProblem", () => {
  it("accepts a path to a field of any of the types: nested, through arrays, nullable, into records", () => {
    expect(Event.pathProblem(["dsync.user.created"], ["data", "first_name"])).toBeUndefined()
    expect(
      Event.pathProblem(["dsync.user.created"], ["data", "emails", "0", "value"])
    ).toBeUndefined()
    expect(
      Event.pathProblem(["dsync.user.created"], ["data", "custom_attributes", "x"])
    ).toBeUndefined()
    expect(
      Event.pathProblem(["user.created", "dsync.group.created"], ["data", "email"])
    ).toBeUndefined()
    expect(Event.pathProblem(["user.created"], ["id"])).toBeUndefined()
  })

  it("accepts every path in every type's example (no false alarms)", () => {
    const paths = (value: unknown, prefix: Array<string> = []): Array<Array<string>> =>
      value !== null && typeof value === "object"
        ? [prefix, ...Object.entries(value).flatMap(([k, v]) => paths(v, [...prefix, k]))]
        : [prefix]
    let checked = 0
    for (const [type, example] of exampleEntries) {
      for (const path of paths(example)) {
        expect(Event.pathProblem([type], path), `${type}: ${path.join(".")}`).toBeUndefined()
        checked++
      }
    }
    expect(checked).toBeGreaterThan(2000)
  })

  it("says where a path stops, with the closest field there or the fields there are", () => {
    expect(Event.pathProblem(["dsync.user.created"], ["data", "first_nam"])).toBe(
      "data.first_nam is not a field of events of type dsync.user.created; did you mean data.first_name?"
    )
    expect(
      Event.pathProblem(
        ["authentication.sso_failed", "authentication.password_failed"],
        ["data", "eror", "code"]
      )
    ).toBe(
      "data.eror is not a field of events of types authentication.sso_failed, authentication.password_failed; did you mean data.error?"
    )
    expect(Event.pathProblem(["user.created"], ["xyzzy"])).toBe(
      "xyzzy is not a field of events of type user.created; an event has context, created_at, data, event, id, object"
    )
    expect(Event.pathProblem(EventPattern.expand(["*"]), ["data", "idd"])).toBe(
      "data.idd is not a field of any event; did you mean data.id?"
    )
    // Past a string, nothing.
    expect(Event.pathProblem(["user.created"], ["data", "email", "x"])).toBe(
      "data.email.x is not a field of events of type user.created"
    )
    expect(
      Event.pathProblem(
        ["user.created", "user.updated", "user.deleted", "dsync.user.created"],
        ["data", "emal"]
      )
    ).toBe(
      "data.emal is not a field of events of types user.created, user.updated, user.deleted and 1 more; did you mean data.email?"
    )
  })
})
