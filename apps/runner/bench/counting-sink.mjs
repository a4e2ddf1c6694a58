// The backfill benchmark's sink: does nothing with an event but count its id. When it
// has seen `target` events it prints one JSON line: events, distinct ids, ids seen
// more than once, ids out of order, ms since its first delivery, the CPU time the
// process spent from the sink's making (before the first request) on, and the peak RSS.
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

const cpuMs = (usage) => (usage.user + usage.system) / 1000

export const definition = {
  type: "counting",
  config: Schema.Struct({ target: Schema.Number }),
  make: (config) =>
    Effect.sync(() => {
      const ids = new Set()
      let seen = 0
      let repeated = 0
      let outOfOrder = 0
      let previous = ""
      let started
      // The process's CPU time from here (the sink is made before reading starts).
      const cpuAtStart = process.cpuUsage()
      return {
        batch: { maxEvents: 1000, maxWait: "50 millis" },
        deliver: (batch) =>
          Effect.sync(() => {
            started ??= performance.now()
            for (const event of batch) {
              seen++
              if (ids.has(event.id)) repeated++
              else ids.add(event.id)
              if (event.id < previous) outOfOrder++
              previous = event.id
            }
            if (seen >= config.target && seen - batch.length < config.target) {
              const line = {
                events: seen,
                distinct: ids.size,
                repeated,
                outOfOrder,
                ms: performance.now() - started,
                at: Date.now(),
                cpuMs: cpuMs(process.cpuUsage(cpuAtStart)),
                peakRssMiB: process.resourceUsage().maxRSS / 1024
              }
              process.stdout.write(`BENCH ${JSON.stringify(line)}\n`)
            }
            return batch.map(() => ({ _tag: "Delivered" }))
          })
      }
    })
}
