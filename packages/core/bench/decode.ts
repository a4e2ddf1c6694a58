/**
 * Decode throughput for pages of 100 events mixing every known type.
 *
 *   pnpm --filter @workos-relay/core bench      (or: node bench/decode.ts)
 *
 * Every row is measured in the same run, on the same page texts, and includes
 * `JSON.parse` of the page: (1) is that floor, the rest say what decoding adds.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { WorkOS as WorkOSNode } from "@workos-inc/node"
import { Ajv } from "ajv"
import formatsPlugin from "ajv-formats"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { enable as enableJit } from "effect/schema/SchemaJITCompiler"
import * as Event from "../src/Event.ts"
import * as EventList from "../src/EventList.ts"
import { examples } from "../src/Examples.ts"

const EVENTS_PER_PAGE = 100
const PAGES = 50
const ROUNDS = 7
const MIN_ROUND_MS = 250

// ---------------------------------------------------------------------------
// Pages: every type in turn, with distinct ids and timestamps.

const allExamples = Object.values(examples) as ReadonlyArray<Record<string, unknown>>
const pages: Array<string> = []
for (let p = 0; p < PAGES; p++) {
  const data = Array.from({ length: EVENTS_PER_PAGE }, (_, i) => {
    const n = p * EVENTS_PER_PAGE + i
    const example = allExamples[(n * 7) % allExamples.length]!
    return {
      ...example,
      id: `event_${String(n).padStart(26, "0")}`,
      created_at: new Date(Date.UTC(2026, 0, 1) + n * 1000).toISOString()
    }
  })
  pages.push(JSON.stringify({ object: "list", data, list_metadata: { after: data.at(-1)!.id } }))
}
const pageBytes = pages.reduce((sum, page) => sum + page.length, 0) / PAGES

// ---------------------------------------------------------------------------
// Contenders. Each decodes one page text and returns how many events it accepted.

/** (3) ajv 8, one compiled validator per event type, dispatched on `event`. */
const makeAjv = () => {
  const spec = JSON.parse(
    fs.readFileSync(
      path.join(import.meta.dirname, "../spec/workos-events-openapi-subset.json"),
      "utf8"
    )
  )
  const ajv = new Ajv({ strict: false, allErrors: false })
  formatsPlugin.default(ajv, { mode: "fast", formats: ["date-time"] })
  ajv.addSchema({ $id: "workos", components: spec.components })
  const rewrite = (node: unknown): unknown =>
    Array.isArray(node)
      ? node.map(rewrite)
      : typeof node === "object" && node !== null
        ? Object.fromEntries(
            Object.entries(node).map(([k, v]) => [k, k === "$ref" ? `workos${v}` : rewrite(v)])
          )
        : node
  const validators = new Map<string, (v: unknown) => boolean>()
  for (const member of spec.components.schemas.EventSchema.allOf[1].oneOf) {
    validators.set(
      member.properties.event.const,
      ajv.compile(rewrite(member) as object) as (v: unknown) => boolean
    )
  }
  return (text: string) => {
    let ok = 0
    for (const event of JSON.parse(text).data) if (validators.get(event.event)?.(event)) ok++
    return ok
  }
}

/** (5, 6) the plain Effect Schema union of every type. */
const makeEffectSchema = () => {
  const union = Schema.Union(Object.values(Event.schemas) as Array<Schema.Top>)
  const decode = Schema.decodeUnknownResult(union as unknown as Schema.Codec<unknown>)
  return {
    ast: union.ast,
    run: (text: string) => {
      let ok = 0
      for (const event of JSON.parse(text).data) if (Result.isSuccess(decode(event))) ok++
      return ok
    }
  }
}

/** (4) @workos-inc/node: `events.listEvents` over an in-memory fetch, so no network is timed. */
const makeWorkosSdk = () => {
  let body = ""
  const sdk = new WorkOSNode("sk_test_bench", {
    maxRetries: 0,
    fetchFn: async () =>
      new Response(body, { status: 200, headers: { "content-type": "application/json" } })
  })
  return async (text: string) => {
    body = text
    return (await sdk.events.listEvents({ events: [] as never })).data.length
  }
}

// ---------------------------------------------------------------------------
// Timing: rounds of at least MIN_ROUND_MS over every page; the median round counts.

const measure = async (run: (text: string) => number | Promise<number>) => {
  const rates: Array<number> = []
  for (let round = 0; round < ROUNDS + 1; round++) {
    let events = 0
    const start = performance.now()
    let elapsed = 0
    do {
      for (const page of pages) events += await run(page)
      elapsed = performance.now() - start
    } while (elapsed < MIN_ROUND_MS)
    if (round > 0) rates.push(events / (elapsed / 1000)) // round 0 warms up
  }
  rates.sort((a, b) => a - b)
  return rates[Math.floor(rates.length / 2)]!
}

const decodePage = (text: string) => {
  const page = Result.getOrThrow(EventList.decodeJson(text))
  let ok = 0
  for (const event of page.data) if (Result.isSuccess(event)) ok++
  return ok
}

// Every contender must accept every event, or its figure means nothing.
const ajvRun = makeAjv()
const effect = makeEffectSchema()
const sdkRun = makeWorkosSdk()
for (const [name, run] of [
  ["ours", decodePage],
  ["ajv", ajvRun],
  ["effect", effect.run]
] as const) {
  const accepted = run(pages[0]!)
  if (accepted !== EVENTS_PER_PAGE)
    throw new Error(`${name} accepted ${accepted} of ${EVENTS_PER_PAGE} events`)
}

const rows: Array<[string, number]> = []
const floor = await measure((text) => JSON.parse(text).data.length)
rows.push(["(1) JSON.parse alone (the floor)", floor])
rows.push(["(2) workos-relay EventList.decodeJson", await measure(decodePage)])
rows.push(["(3) ajv 8, one validator per type (+ date-time)", await measure(ajvRun)])
rows.push(["(4) @workos-inc/node listEvents, in-memory fetch", await measure(sdkRun)])
rows.push([
  "    floor of (4): new Response(text).json()",
  await measure(
    async (text) => ((await new Response(text).json()) as { data: Array<unknown> }).data.length
  )
])
rows.push(["(5) Effect Schema union, interpreted", await measure(effect.run)])
enableJit(effect.ast)
rows.push(["(6) Effect Schema union, JIT compiled", await measure(effect.run)])

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
console.log(
  `Decoding pages of ${EVENTS_PER_PAGE} events (${fmt(pageBytes / 1024, 1)} KiB each) mixing all ${allExamples.length} types; Node ${process.version}; median of ${ROUNDS} rounds.\n`
)
const width = Math.max(...rows.map(([name]) => name.length))
console.log(
  `${"contender".padEnd(width)} | ${"events/s".padStart(11)} | ${"µs/page".padStart(8)} | cost vs (1)`
)
console.log(`${"-".repeat(width)}-|-${"-".repeat(11)}-|-${"-".repeat(8)}-|------------`)
for (const [name, rate] of rows) {
  console.log(
    `${name.padEnd(width)} | ${fmt(rate).padStart(11)} | ${fmt((EVENTS_PER_PAGE / rate) * 1e6, 1).padStart(8)} | ${fmt(floor / rate, 2)}x`
  )
}
const ours = rows[1]![1]
const ajv = rows[2]![1]
console.log(
  `\n(2) costs ${fmt(floor / ours, 2)}x JSON.parse (target <= 1.5x) and runs ${fmt(ours / ajv, 2)}x as fast as ajv (target > 1x).`
)
