/**
 * How fast events stream from the WorkOS stand-in over loopback: our `EventStream`
 * against a loop over `@workos-inc/node`'s `events.listEvents`, the same pages
 * (100 events, ascending, following `after`), in the same run.
 *
 *   node bench/stream.ts [events]      (default 100000)
 *
 * The stand-in runs in a process of its own, and each measurement in a fresh
 * process, so a client's peak RSS is its own, measured from start to end: it
 * must not grow with the number of events streamed.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const self = fileURLToPath(import.meta.url)
const API_KEY = "sk_test_bench"
const PAGE = 100
const ROUNDS = 3

interface Measurement {
  readonly client: string
  readonly events: number
  readonly ms: number
  readonly peakRssMiB: number
  /** The heap still in use after the run and a full GC: what the client kept. */
  readonly retainedHeapMiB: number
}

/** Runs this file in a child Node that resolves workspace packages to their sources. */
const child = (args: ReadonlyArray<string>, onLine?: (line: string) => void) => {
  const process_ = spawn(
    process.execPath,
    ["--expose-gc", "--conditions=@workos-relay/source", self, ...args],
    {
      stdio: ["pipe", "pipe", "inherit"]
    }
  )
  let output = ""
  process_.stdout.setEncoding("utf8")
  process_.stdout.on("data", (chunk: string) => {
    output += chunk
    let newline = output.indexOf("\n")
    while (newline >= 0) {
      onLine?.(output.slice(0, newline))
      output = output.slice(newline + 1)
      newline = output.indexOf("\n")
    }
  })
  const done = new Promise<void>((resolve, reject) =>
    process_.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`${args.join(" ")} exited with ${code}`))
    )
  )
  return { process: process_, done }
}

const measure = async (client: string, url: string, events: number): Promise<Measurement> => {
  let result: Measurement | undefined
  await child(["measure", client, url, String(events)], (line) => {
    result = JSON.parse(line) as Measurement
  }).done
  if (result === undefined) throw new Error(`${client} reported nothing`)
  return result
}

// ---------------------------------------------------------------------------
// Child: the stand-in

const serve = async (events: number) => {
  const { WorkOSStandIn } = await import("../src/index.ts")
  const standIn = await WorkOSStandIn.start({ events, apiKey: API_KEY })
  process.stdout.write(`${standIn.url}\n`)
  // Serves until the parent closes stdin.
  process.stdin.resume()
  process.stdin.on("end", () => void standIn.close().then(() => process.exit(0)))
}

// ---------------------------------------------------------------------------
// Child: one client, one measurement

/** Loads the client, then gives the run to time: module loading is not counted. */
const streamOurs = async (url: string, events: number): Promise<() => Promise<number>> => {
  const { EventStream, WorkOS } = await import("@workos-relay/core")
  const { Effect, Layer, Redacted, Stream } = await import("effect")
  const { FetchHttpClient } = await import("effect/http")
  const layer = WorkOS.layer({ baseUrl: url, apiKey: Redacted.make(API_KEY) }).pipe(
    Layer.provide(FetchHttpClient.layer)
  )
  return () =>
    Effect.runPromise(
      EventStream.make({ start: "earliest", pageSize: PAGE }).pipe(
        Stream.take(events),
        Stream.runFold(
          () => 0,
          (count, element) => {
            if (element._tag !== "Event") throw new Error("an event failed to decode")
            return count + 1
          }
        ),
        Effect.provide(layer)
      )
    )
}

const streamSdk = async (url: string, events: number): Promise<() => Promise<number>> => {
  const { WorkOS } = await import("@workos-inc/node")
  const { hostname, port } = new URL(url)
  const workos = new WorkOS(API_KEY, { apiHostname: hostname, port: Number(port), https: false })
  return async () => {
    let count = 0
    let after: string | undefined
    while (count < events) {
      const page = await workos.events.listEvents({
        // The SDK requires a type list; an empty one asks for every type, as ours does.
        events: [],
        order: "asc",
        limit: PAGE,
        ...(after === undefined ? {} : { after })
      })
      count += page.data.length
      const next = page.listMetadata.after
      if (next === null || next === undefined) break
      after = next
    }
    return Math.min(count, events)
  }
}

const measureHere = async (client: string, url: string, events: number) => {
  const run = client === "ours" ? await streamOurs(url, events) : await streamSdk(url, events)
  const started = performance.now()
  const count = await run()
  const ms = performance.now() - started
  if (count !== events) throw new Error(`${client} streamed ${count} events, not ${events}`)
  ;(globalThis as { gc?: () => void }).gc?.()
  const measurement: Measurement = {
    client,
    events,
    ms,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    retainedHeapMiB: process.memoryUsage().heapUsed / 2 ** 20
  }
  process.stdout.write(`${JSON.stringify(measurement)}\n`)
}

// ---------------------------------------------------------------------------
// Parent

const main = async (total: number) => {
  const small = Math.max(1, Math.floor(total / 10))
  process.stdout.write(`Seeding the stand-in with ${total.toLocaleString("en")} events...\n`)
  let url = ""
  let announced: () => void = () => {}
  const ready = new Promise<void>((resolve) => {
    announced = resolve
  })
  const server = child(["serve", String(total)], (line) => {
    url = line
    announced()
  })
  await ready
  try {
    const best = new Map<string, Measurement>()
    // Rounds alternate the clients, so neither always runs on a colder or busier machine.
    for (let round = 0; round < ROUNDS; round++) {
      for (const client of ["ours", "sdk"]) {
        for (const events of [small, total]) {
          const m = await measure(client, url, events)
          const key = `${client}:${events}`
          const previous = best.get(key)
          best.set(key, {
            ...m,
            ms: Math.min(m.ms, previous?.ms ?? Infinity),
            peakRssMiB: Math.max(m.peakRssMiB, previous?.peakRssMiB ?? 0),
            retainedHeapMiB: Math.max(m.retainedHeapMiB, previous?.retainedHeapMiB ?? 0)
          })
        }
      }
    }
    const row = (label: string, m: Measurement) => {
      const cells = [
        label.padEnd(34),
        m.events.toLocaleString("en").padStart(7),
        Math.round((m.events / m.ms) * 1000)
          .toLocaleString("en")
          .padStart(10),
        m.ms.toFixed(0).padStart(7),
        m.peakRssMiB.toFixed(1).padStart(13),
        m.retainedHeapMiB.toFixed(1).padStart(18)
      ]
      return `| ${cells.join(" | ")} |`
    }
    const get = (key: string) => best.get(key)!
    const lines = [
      "",
      `Streaming from the WorkOS stand-in over loopback, ${PAGE} events a page (best time of ${ROUNDS} runs; memory: the largest)`,
      "",
      "| client                             |  events |   events/s |      ms | peak RSS, MiB | heap after GC, MiB |",
      "| ---------------------------------- | ------: | ---------: | ------: | ------------: | -----------------: |",
      row("EventStream (effect/http, fetch)", get(`ours:${small}`)),
      row("EventStream (effect/http, fetch)", get(`ours:${total}`)),
      row("@workos-inc/node listEvents loop", get(`sdk:${small}`)),
      row("@workos-inc/node listEvents loop", get(`sdk:${total}`)),
      ""
    ]
    const rate = (m: Measurement) => m.events / m.ms
    const ours = get(`ours:${total}`)
    const sdk = get(`sdk:${total}`)
    lines.push(
      `EventStream / SDK loop at ${total.toLocaleString("en")} events: ${(rate(ours) / rate(sdk)).toFixed(2)}x`,
      `Peak RSS of EventStream: ${get(`ours:${small}`).peakRssMiB.toFixed(1)} MiB at ${small.toLocaleString("en")} events, ${ours.peakRssMiB.toFixed(1)} MiB at ${total.toLocaleString("en")} (${(ours.peakRssMiB - get(`ours:${small}`).peakRssMiB).toFixed(1)} MiB more for ${(total - small).toLocaleString("en")} more events)`,
      `Peak RSS of the SDK loop: ${get(`sdk:${small}`).peakRssMiB.toFixed(1)} MiB at ${small.toLocaleString("en")} events, ${sdk.peakRssMiB.toFixed(1)} MiB at ${total.toLocaleString("en")}`,
      ""
    )
    process.stdout.write(lines.join("\n"))
  } finally {
    server.process.stdin?.end()
    await server.done
  }
}

const [mode, ...args] = process.argv.slice(2)
if (mode === "serve") await serve(Number(args[0]))
else if (mode === "measure") await measureHere(args[0]!, args[1]!, Number(args[2]))
else await main(Number(mode ?? 100_000))
