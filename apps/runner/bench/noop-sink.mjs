// The benchmark's sink: accepts every event and does nothing with it. When it has
// seen `target` events it prints one JSON line (events, ms since it was made, the
// process's peak RSS) for the benchmark to read.
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

export const definition = {
  type: "noop",
  config: Schema.Struct({ target: Schema.Number }),
  make: (config) =>
    Effect.sync(() => {
      let seen = 0
      let started
      // The process's CPU time from the first event on: what a build spends, whatever
      // else the machine runs (its wall time is only as good as the machine is quiet).
      let cpuStart
      // What the process holds before the first event: Node, effect, the event model.
      const startRssMiB = process.memoryUsage().rss / 2 ** 20
      return {
        batch: { maxEvents: 1000, maxWait: "50 millis" },
        deliver: (batch) =>
          Effect.sync(() => {
            started ??= performance.now()
            cpuStart ??= process.cpuUsage()
            seen += batch.length
            if (
              process.env.BENCH_TRACE &&
              Math.floor(seen / 20000) !== Math.floor((seen - batch.length) / 20000)
            ) {
              const m = process.memoryUsage()
              process.stderr.write(
                `seen ${seen} rss ${(m.rss / 2 ** 20).toFixed(0)} heapUsed ${(m.heapUsed / 2 ** 20).toFixed(0)} heapTotal ${(m.heapTotal / 2 ** 20).toFixed(0)} external ${(m.external / 2 ** 20).toFixed(0)} buffers ${(m.arrayBuffers / 2 ** 20).toFixed(0)}\n`
              )
            }
            if (seen >= config.target && seen - batch.length < config.target) {
              const cpu = process.cpuUsage(cpuStart)
              const line = {
                events: seen,
                ms: performance.now() - started,
                cpuMs: (cpu.user + cpu.system) / 1000,
                peakRssMiB: process.resourceUsage().maxRSS / 1024,
                startRssMiB
              }
              process.stdout.write(`BENCH ${JSON.stringify(line)}\n`)
            }
            return batch.map(() => ({ _tag: "Delivered" }))
          })
      }
    })
}
