/**
 * The webhook doorbell against polling alone: how long from an event's creation to
 * its delivery (to a no-op sink), and how many requests a minute each costs.
 *
 *   node --conditions=@workos-relay/source bench/doorbell.ts [seconds] [eventsPerSecond] [visibilityMs]
 *   (defaults: 60 s, 3 events/s, 1000 ms)
 *
 * The WorkOS stand-in appends events at random times (exponential gaps, the given
 * rate), serves each only `visibilityMs` after its creation, and sends its webhook at
 * once, signed; the runner follows three ways, one after the other on fresh
 * stand-ins with the same seed: polling every 5 s alone; the same plus the doorbell
 * (debounce 250 ms: a poll at once and one after the visibility delay); and the
 * doorbell with a debounce just over the visibility delay (one poll per burst) and a
 * 60 s safety-net poll. Prints p50/p95/p99 of
 * created → delivered, and GET /events per minute.
 */

import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { WorkOSStandIn, WorkOSWebhooks } from "@workos-relay/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as References from "effect/References"
import * as Config from "../src/Config.ts"
import { Metrics } from "../src/Observability.ts"
import * as Runner from "../src/Runner.ts"

const [seconds = 60, rate = 3, visibilityMs = 1000] = process.argv.slice(2).map(Number)
const secret = "whsec_bench"
const bench = Path.dirname(new URL(import.meta.url).pathname)

interface Arrival {
  readonly id: string
  readonly created: number
  readonly delivered: number
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!

const round = (name: string, pollInterval: string, debounce: number | undefined) =>
  Effect.scoped(
    Effect.gen(function* () {
      const arrivals: Array<Arrival> = []
      ;(globalThis as any).doorbellBench = arrivals
      const standIn = yield* WorkOSStandIn.make({
        events: 10,
        seed: 42,
        quirks: { visibilityDelayMs: visibilityMs }
      })
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "doorbell-bench-"))
      const config = yield* Config.decode(
        {
          source: {
            type: "workos",
            apiKey: standIn.apiKey,
            baseUrl: standIn.url,
            start: "latest",
            pollInterval
          },
          state: { sqlite: Path.join(dir, "state.db") },
          http: { address: "127.0.0.1:0" },
          ...(debounce !== undefined
            ? {
                webhooks: {
                  secrets: [secret],
                  visibilityDelay: `${visibilityMs + 100}ms`,
                  debounce: `${debounce}ms`
                }
              }
            : {}),
          sinks: { noop: { module: "./latency-sink.mjs" } }
        },
        { file: "bench", baseDir: bench, env: {} }
      )
      const stop = yield* Deferred.make<void>()
      const listening = yield* Deferred.make<number>()
      const running = yield* Runner.run(config, {
        stop,
        metrics: new Metrics(),
        onListening: (port) => Deferred.doneUnsafe(listening, Effect.succeed(port))
      }).pipe(Effect.forkScoped)
      const port = yield* Deferred.await(listening)
      yield* Effect.sleep("500 millis")
      if (debounce !== undefined)
        WorkOSWebhooks.sendTo(standIn, { url: `http://127.0.0.1:${port}/webhooks/workos`, secret })
      const before = standIn.requests.length
      const started = Date.now()
      let random = 42
      const next = () => {
        random = (random * 1103515245 + 12345) % 2 ** 31
        return random / 2 ** 31
      }
      let appended = 0
      while (Date.now() - started < seconds * 1000) {
        yield* Effect.sleep(Math.round((-Math.log(1 - next()) / rate) * 1000))
        standIn.appendGenerated(1)
        appended++
      }
      const minutes = (Date.now() - started) / 60_000
      const requests = standIn.requests.length - before
      // Let the last events arrive (at most a poll interval and the visibility delay).
      const deadline = Date.now() + 15_000
      while (arrivals.length < appended && Date.now() < deadline) yield* Effect.sleep(100)
      yield* Deferred.succeed(stop, undefined)
      yield* Fiber.join(running)
      const latencies = arrivals.map((a) => a.delivered - a.created).sort((a, b) => a - b)
      return {
        name,
        events: appended,
        delivered: arrivals.length,
        p50: percentile(latencies, 0.5),
        p95: percentile(latencies, 0.95),
        p99: percentile(latencies, 0.99),
        requestsPerMinute: requests / minutes
      }
    })
  )

const main = Effect.gen(function* () {
  console.log(
    `doorbell benchmark: ${seconds} s per round, ~${rate} events/s, visibility delay ${visibilityMs} ms, no-op sink`
  )
  const rows = [
    yield* round("poll 5s", "5s", undefined),
    yield* round("poll 5s + doorbell (debounce 250ms)", "5s", 250),
    yield* round(
      `poll 60s + doorbell (debounce ${visibilityMs + 200}ms)`,
      "60s",
      visibilityMs + 200
    )
  ]
  console.log("| setup | events | delivered | p50 ms | p95 ms | p99 ms | GET /events per min |")
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
  for (const r of rows)
    console.log(
      `| ${r.name} | ${r.events} | ${r.delivered} | ${r.p50} | ${r.p95} | ${r.p99} | ${r.requestsPerMinute.toFixed(1)} |`
    )
  const [poll, bell, quiet] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0]]
  console.log(
    `p50 with the doorbell: ${bell.p50} ms (target < ${1000 + visibilityMs} ms: ${bell.p50 < 1000 + visibilityMs ? "met" : "NOT met"}); polling alone: ${poll.p50} ms (${(poll.p50 / bell.p50).toFixed(1)}x)`
  )
  console.log(
    `requests/min: poll 5s ${poll.requestsPerMinute.toFixed(1)}, +doorbell ${bell.requestsPerMinute.toFixed(1)} (${(bell.requestsPerMinute / poll.requestsPerMinute).toFixed(2)}x), doorbell with 60s poll ${quiet.requestsPerMinute.toFixed(1)} (${(quiet.requestsPerMinute / poll.requestsPerMinute).toFixed(2)}x)`
  )
})

Effect.runPromise(main.pipe(Effect.provideService(References.MinimumLogLevel, "Error"))).catch(
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
