// The doorbell benchmark's sink: accepts every event, doing nothing with it, and
// notes when each arrived (the benchmark runs the runner in its own process and
// reads `globalThis.doorbellBench`).
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

export const definition = {
  type: "latency",
  config: Schema.Struct({}),
  make: () =>
    Effect.sync(() => {
      globalThis.doorbellBench ??= []
      const arrivals = globalThis.doorbellBench
      return {
        batch: { maxEvents: 100, maxWait: "0 millis" },
        deliver: (batch) =>
          Effect.sync(() => {
            const now = Date.now()
            for (const event of batch)
              arrivals.push({ id: event.id, created: Date.parse(event.created_at), delivered: now })
            return batch.map(() => ({ _tag: "Delivered" }))
          })
      }
    })
}
