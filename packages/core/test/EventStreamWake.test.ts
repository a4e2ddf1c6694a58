import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { FetchHttpClient } from "effect/http"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { WorkOSStandIn } from "../../testing/src/index.ts"
import { EventStream, WorkOS } from "../src/index.ts"

describe("EventStream wake", () => {
  it.live("a wake asks again at once instead of waiting the poll interval; events the same", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 5 })
        const seeded = standIn.events().map((e) => e.id)
        const rings = yield* Queue.unbounded<void>()
        const fiber = yield* EventStream.make({
          start: "earliest",
          follow: true,
          // Without a wake nothing new would be read during the test.
          pollInterval: "1 hour",
          wake: Queue.take(rings)
        }).pipe(
          Stream.take(5 + 3),
          Stream.runCollect,
          Effect.provide(
            WorkOS.layer({ baseUrl: standIn.url, apiKey: Redacted.make(standIn.apiKey) }).pipe(
              Layer.provide(FetchHttpClient.layer)
            )
          ),
          Effect.forkChild
        )
        while (standIn.requests.length < 1) yield* Effect.sleep("5 millis")
        const appended = standIn.appendGenerated(3).map((e) => e.id)
        yield* Queue.offer(rings, undefined)
        const elements = yield* Fiber.join(fiber)
        expect(elements.map((e) => (e._tag === "Event" ? e.event.id : "?"))).toEqual([
          ...seeded,
          ...appended
        ])
        expect(standIn.requests.length).toBe(2)
      })
    )
  )
})
