/**
 * What a Slack message costs: rendering per event (µs) across every event type,
 * against `JSON.stringify` of the same event measured in the same run; and
 * messages per second through the Slack stand-in with pacing off and on.
 *
 *   pnpm --filter @workos-relay/sink-slack bench
 */
import type { Event } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import { SlackStandIn } from "@workos-relay/testing"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Blocks from "../src/Blocks.ts"
import { definition } from "../src/index.ts"

const events = Object.values(examples) as ReadonlyArray<Event.Any>

/** Every string replaced by a long markup-laden one: the worst case for escaping and cutting. */
const heavy = (value: unknown): unknown =>
  typeof value === "string"
    ? "<!channel> *bold* & _x_ 中文 😀 ".repeat(200)
    : Array.isArray(value)
      ? value.map(heavy)
      : value !== null && typeof value === "object"
        ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, heavy(v)]))
        : value
const heavyEvents = events.map((e) => ({ ...e, data: heavy(e.data) }) as Event.Any)

/** Microseconds per call of `f` over `items`, best of several rounds. */
const perItem = (
  items: ReadonlyArray<Event.Any>,
  f: (e: Event.Any) => unknown,
  minMs = 300
): number => {
  let best = Number.POSITIVE_INFINITY
  let sink = 0
  for (let round = 0; round < 5; round++) {
    let n = 0
    const start = performance.now()
    while (performance.now() - start < minMs / 5) {
      for (const item of items) {
        const out = f(item)
        sink += typeof out === "string" ? out.length : 1
      }
      n += items.length
    }
    best = Math.min(best, ((performance.now() - start) * 1000) / n)
  }
  if (sink < 0) console.log(sink)
  return best
}

// Warm up.
perItem(events, (e) => Blocks.render(e), 200)

const baseline = perItem(events, (e) => JSON.stringify(e))
const renderRows: Array<[string, number]> = [
  ["JSON.stringify(event) (baseline)", baseline],
  ["Blocks.render, every type", perItem(events, (e) => Blocks.render(e))],
  [
    "Blocks.render + JSON.stringify (what is sent)",
    perItem(events, (e) =>
      JSON.stringify(
        Blocks.render(e, { mentions: ["<!here>"], dashboardUrl: "https://dashboard.workos.com" })
      )
    )
  ],
  ["Blocks.render, 6 KB markup-laden strings", perItem(heavyEvents, (e) => Blocks.render(e), 600)],
  [
    "Blocks.digest of 100 events, per event",
    perItem([events[0]!], () => Blocks.digest(events.slice(0, 100))) / 100
  ]
]

// The slowest type, to see whether one family costs far more than the rest.
let slowest: [string, number] = ["", 0]
for (const event of events) {
  const us = perItem([event], (e) => Blocks.render(e), 20)
  if (us > slowest[1]) slowest = [event.event, us]
}
renderRows.push([`Blocks.render, slowest type (${slowest[0]})`, slowest[1]])

console.log("\nRender cost per event (µs), best of 5 rounds")
console.log("| what | µs / event | × baseline |")
console.log("| --- | ---: | ---: |")
for (const [what, us] of renderRows)
  console.log(`| ${what} | ${us.toFixed(2)} | ${(us / baseline).toFixed(1)} |`)

// ---------------------------------------------------------------------------
// Through the stand-in

const throughput = (channels: number, perChannel: number, pacing: unknown) =>
  Effect.scoped(
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make({
        channels: Array.from({ length: channels }, (_, i) => ({
          id: `C${String(i).padStart(8, "0")}`,
          name: `ch-${i}`
        }))
      })
      const routes = Array.from({ length: channels }, (_, i) => ({
        organizations: [`org_${i}`],
        channel: `#ch-${i}`
      }))
      const sink = yield* definition.make(
        Schema.decodeUnknownSync(definition.config)({
          token: standIn.token,
          channel: "#ch-0",
          slackApiUrl: standIn.url,
          routes,
          ...(pacing !== undefined ? { pacing } : {})
        }),
        { name: "bench" }
      )
      const batch = Array.from({ length: channels * perChannel }, (_, i) => {
        const e = events[i % events.length]!
        return {
          ...e,
          id: `evt_${i}`,
          data: { ...e.data, organization_id: `org_${i % channels}` }
        } as Event.Any
      })
      const start = performance.now()
      const outcomes = yield* sink.deliver(batch)
      const seconds = (performance.now() - start) / 1000
      const delivered = outcomes.filter((o) => o._tag === "Delivered").length
      if (delivered !== batch.length || standIn.messages().length !== batch.length) {
        throw new Error(`only ${delivered} of ${batch.length} delivered`)
      }
      return { messages: batch.length, seconds, perSecond: batch.length / seconds }
    })
  )

const runs: ReadonlyArray<[string, number, number, unknown]> = [
  ["pacing off, 1 channel", 1, 400, "off"],
  ["pacing off, 10 channels", 10, 40, "off"],
  ["pacing on (1/s, burst 3), 1 channel", 1, 6, undefined],
  ["pacing on (1/s, burst 3), 10 channels", 10, 6, undefined]
]
const results: Array<[string, { messages: number; seconds: number; perSecond: number }]> = []
for (const [what, channels, perChannel, pacing] of runs) {
  results.push([what, await Effect.runPromise(throughput(channels, perChannel, pacing))])
}
const offBaseline = results[0]![1].perSecond
console.log("\nMessages per second through the Slack stand-in (real WebClient, HTTP on 127.0.0.1)")
console.log("| what | messages | seconds | messages/s | × pacing off, 1 channel |")
console.log("| --- | ---: | ---: | ---: | ---: |")
for (const [what, r] of results) {
  console.log(
    `| ${what} | ${r.messages} | ${r.seconds.toFixed(2)} | ${r.perSecond.toFixed(1)} | ${(r.perSecond / offBaseline).toFixed(3)} |`
  )
}
