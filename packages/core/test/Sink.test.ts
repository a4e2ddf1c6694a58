import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { examples } from "../src/Examples.ts"
import { type Event, Event as EventModule, Sink } from "../src/index.ts"

describe("Sink.define", () => {
  it.effect("types deliver by the definition's patterns and reports per event", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const definition = Sink.define({
        type: "dsync-users",
        events: ["dsync.user.*"],
        config: Schema.Struct({ rejectDeleted: Schema.Boolean }),
        make: (config) =>
          Effect.succeed({
            batch: { maxEvents: 10, maxWait: "1 second" },
            deliver: (batch) => {
              expectTypeOf(batch).toEqualTypeOf<
                ReadonlyArray<
                  Event.Of<"dsync.user.created" | "dsync.user.deleted" | "dsync.user.updated">
                >
              >()
              return Effect.succeed(
                batch.map((event) => {
                  seen.push(event.data.directory_id)
                  return config.rejectDeleted && event.event === "dsync.user.deleted"
                    ? Sink.rejected("deletions are not wanted here")
                    : Sink.delivered
                })
              )
            }
          })
      })
      const config = Schema.decodeUnknownSync(definition.config)({ rejectDeleted: true })
      const sink = yield* Effect.scoped(definition.make(config, { name: "users" }))
      const outcomes = yield* sink.deliver([
        examples["dsync.user.created"],
        examples["dsync.user.deleted"]
      ])
      expect(outcomes).toEqual([
        Sink.delivered,
        { _tag: "Rejected", reason: "deletions are not wanted here" }
      ])
      expect(seen).toEqual([
        examples["dsync.user.created"].data.directory_id,
        examples["dsync.user.deleted"].data.directory_id
      ])
    })
  )

  it("takes every event when no patterns are given", () => {
    const definition = Sink.define({
      type: "anything",
      config: Schema.Struct({}),
      make: () =>
        Effect.succeed({
          batch: { maxEvents: 1, maxWait: 0 },
          deliver: (batch) => Effect.succeed(batch.map(() => Sink.delivered))
        })
    })
    expectTypeOf<
      Parameters<Effect.Success<ReturnType<typeof definition.make>>["deliver"]>[0]
    >().toEqualTypeOf<ReadonlyArray<Event.Any>>()
  })
})

describe("Sink.mismatched and Sink.mismatchOf", () => {
  /** The spec's example of a role event, as a server that leaves `resource_type_slug` out sends it. */
  const drifted = () => {
    const event = structuredClone(examples["organization_role.created"]) as any
    delete event.data.resource_type_slug
    return event as unknown
  }
  const failure = (input: unknown): Event.EventDecodeError => {
    const result = EventModule.decode(input)
    if (Result.isSuccess(result)) throw new Error("expected the event to fail to decode")
    return result.failure
  }

  it("marks the very object WorkOS sent, its JSON unchanged, with the decode error's path and reason", () => {
    const raw = drifted()
    const text = JSON.stringify(raw)
    const event = Sink.mismatched(failure(raw))
    expect(event).toBe(raw)
    expect(JSON.stringify(event)).toBe(text)
    expect(Object.keys(event!)).toEqual(Object.keys(raw as object))
    expect(Sink.mismatchOf(event!)).toEqual({
      path: "data.resource_type_slug",
      reason: "required field is missing"
    })
    expect(Sink.formatMismatch(Sink.mismatchOf(event!)!)).toBe(
      "data.resource_type_slug: required field is missing"
    )
  })

  it("an event that matches the spec, or a copy of a marked one, carries no mark", () => {
    const raw = drifted()
    const event = Sink.mismatched(failure(raw))!
    expect(Sink.mismatchOf(examples["organization_role.created"])).toBeUndefined()
    expect(Sink.mismatchOf({ ...event })).toBeUndefined()
  })

  it("something without an id or a type is no event a sink can take", () => {
    const { id: _, ...noId } = drifted() as Record<string, unknown>
    expect(Sink.mismatched(failure(noId))).toBeUndefined()
    const { event: __, ...noType } = drifted() as Record<string, unknown>
    expect(Sink.mismatched(failure(noType))).toBeUndefined()
    const notJson = EventModule.decodeJson("{")
    expect(Result.isFailure(notJson) && Sink.mismatched(notJson.failure)).toBe(undefined)
  })

  it("an empty path reads as the reason alone", () => {
    expect(Sink.formatMismatch({ path: "", reason: "expected an object" })).toBe(
      "expected an object"
    )
  })

  it("the marks are shared through globalThis, so a second copy of this package reads them", () => {
    const raw = drifted()
    Sink.mismatched(failure(raw))
    const shared = (globalThis as any)[Symbol.for("@workos-relay/core/Sink/mismatches")]
    expect(shared.get(raw)).toEqual({
      path: "data.resource_type_slug",
      reason: "required field is missing"
    })
  })

  it.effect("raw is declared on the definition (typed when absent); deliver reads the mark", () =>
    Effect.gen(function* () {
      const definition = Sink.define({
        type: "archive",
        raw: true,
        config: Schema.Struct({}),
        make: () =>
          Effect.succeed({
            batch: { maxEvents: 10, maxWait: 0 },
            deliver: (batch) =>
              Effect.succeed(
                batch.map((event) => {
                  const mismatch = Sink.mismatchOf(event)
                  return mismatch === undefined
                    ? Sink.delivered
                    : Sink.rejected(Sink.formatMismatch(mismatch))
                })
              )
          })
      })
      expect(definition.raw).toBe(true)
      const typed = Sink.define({ ...definition, raw: undefined })
      expect(typed.raw).toBeUndefined()
      const sink = yield* Effect.scoped(definition.make({}, { name: "archive" }))
      const marked = Sink.mismatched(failure(drifted()))!
      expect(yield* sink.deliver([examples["user.created"], marked])).toEqual([
        Sink.delivered,
        Sink.rejected("data.resource_type_slug: required field is missing")
      ])
    })
  )
})
