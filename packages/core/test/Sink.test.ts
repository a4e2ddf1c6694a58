import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { examples } from "../src/Examples.ts"
import { type Event, Sink } from "../src/index.ts"

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
