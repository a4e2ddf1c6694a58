/**
 * What checking every event against its schema costs, page by page: the stand-in's
 * own pages of 100 events (every known type in turn, as the backfill benchmark serves
 * them), decoded again and again in this process by
 *
 * - `JSON.parse` alone (what any client pays, the `@workos-inc/node` loop included),
 * - core's `EventList.decodeJson` (parse, then each event checked by the lean check of
 *   its type, found by its `event` name: no union is tried),
 * - the same plus `EventStream`'s per-event work (position, filters, elements), by
 *   reading the pages through `EventStream.make` from an in-memory client.
 *
 *   node --conditions=@workos-relay/source bench/decode.ts [pages]   (default 600 = 60,000 events)
 *
 * Prints µs per event for each (median of 7 rounds) and the share over parse alone.
 */
import { EventList, EventStream, WorkOS } from "@workos-relay/core"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"

const pages = Number(process.argv[2] ?? 600)
const standIn = await WorkOSStandIn.start({ events: pages * 100, apiKey: "sk_test_bench" })
const bodies: Array<string> = []
let after: string | undefined
for (let i = 0; i < pages; i++) {
  const url = new URL(`${standIn.url}/events`)
  url.searchParams.set("limit", "100")
  url.searchParams.set("order", "asc")
  if (after !== undefined) url.searchParams.set("after", after)
  const response = await fetch(url, { headers: { authorization: "Bearer sk_test_bench" } })
  const text = await response.text()
  bodies.push(text)
  after = JSON.parse(text).list_metadata.after ?? undefined
}
await standIn.close()
const events = pages * 100

const time = (run: () => void): number => {
  const rounds: Array<number> = []
  for (let r = 0; r < 7; r++) {
    const start = performance.now()
    run()
    rounds.push(performance.now() - start)
  }
  rounds.sort((a, b) => a - b)
  return (rounds[3]! * 1000) / events
}

let sink = 0
const parse = time(() => {
  for (const body of bodies) sink += JSON.parse(body).data.length
})
const decode = time(() => {
  for (const body of bodies) {
    const page = EventList.decodeJson(body)
    if (Result.isFailure(page)) throw new Error("bad page")
    for (const r of page.success.data) if (Result.isFailure(r)) throw new Error(r.failure.message)
    sink += page.success.data.length
  }
})
// EventStream over a client that answers from memory: the stream's own per-event work.
let served = 0
const client: WorkOS.Service = {
  baseUrl: "memory",
  listEvents: () =>
    Effect.sync(() => {
      const body = bodies[served++]
      if (body === undefined) return { object: "list", data: [], list_metadata: { after: null } }
      const page = EventList.decodeJson(body)
      if (Result.isFailure(page)) throw new Error("bad page")
      return served === bodies.length
        ? { ...page.success, list_metadata: { after: null } }
        : page.success
    })
}
const stream = time(() => {
  served = 0
  Effect.runSync(
    EventStream.make({ start: "earliest" }).pipe(
      Stream.provideService(WorkOS.WorkOS, client),
      Stream.runForEachArray((elements) =>
        Effect.sync(() => {
          sink += elements.length
        })
      )
    )
  )
})
const row = (label: string, us: number) =>
  console.log(
    `${label.padEnd(52)} ${us.toFixed(2).padStart(6)} µs/event  ${(us / parse).toFixed(2)}x`
  )
console.log(
  `${events} events in ${pages} pages of 100, ${Math.round(bodies.join("").length / events)} bytes an event (Node ${process.version})`
)
row("JSON.parse", parse)
row("EventList.decodeJson (parse + schema check)", decode)
row("EventStream.make (decode + position, filters)", stream)
if (sink < 0) console.log(sink)
