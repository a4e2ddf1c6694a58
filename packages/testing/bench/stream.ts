/**
 * How fast events stream from the WorkOS stand-in over loopback: our `EventStream`
 * against a loop over `@workos-inc/node`'s `events.listEvents`, the same pages
 * (100 events, ascending, following `after`), in the same run. A third row, plain
 * `fetch` and `JSON.parse` with no checks, is the floor both stand on.
 *
 *   node bench/stream.ts [events] [--node-defaults]     (default 1000000)
 *
 * The stand-in runs in a process of its own (walked once before measuring, so no
 * client pays for its warm-up), and each measurement in a fresh process, so a
 * client's peak RSS is its own: it must not grow with the number of events, so each
 * client streams a tenth of the events, then all of them. CPU time is reported beside
 * wall time, as it says more on a busy machine.
 *
 * Every client runs with the V8 and malloc settings the runner's executable uses for a
 * long stream (apps/runner/src/bin.ts explains each); `--node-defaults` runs them with
 * Node's own, where V8 lets the heap of any of them grow far larger before collecting.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const self = fileURLToPath(import.meta.url)
const API_KEY = "sk_test_bench"
const PAGE = 100
const ROUNDS = 3
/** As apps/runner/src/bin.ts sets them. */
const RUNNER_FLAGS = ["--max-semi-space-size=8", "--no-maglev", "--heap-growing-percent=50"]
const nodeDefaults = process.argv.includes("--node-defaults")

const clients = {
  ours: "EventStream (effect/http, fetch)",
  sdk: "@workos-inc/node listEvents loop",
  floor: "fetch + JSON.parse, no checks"
} as const
type Client = keyof typeof clients

interface Measurement {
  readonly client: Client
  readonly events: number
  readonly ms: number
  readonly cpuMs: number
  readonly peakRssMiB: number
  /** The heap still in use after the run and a full GC: what the client kept. */
  readonly retainedHeapMiB: number
}

/** Runs this file in a child Node that resolves workspace packages to their sources. */
const child = (args: ReadonlyArray<string>, onLine?: (line: string) => void) => {
  const process_ = spawn(
    process.execPath,
    [
      "--expose-gc",
      "--conditions=@workos-relay/source",
      ...(nodeDefaults ? [] : RUNNER_FLAGS),
      self,
      ...args
    ],
    {
      stdio: ["pipe", "pipe", "inherit"],
      env: nodeDefaults
        ? process.env
        : { MALLOC_ARENA_MAX: "2", MALLOC_MMAP_THRESHOLD_: "65536", ...process.env }
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

const measure = async (client: Client, url: string, events: number): Promise<Measurement> => {
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
// Child: one client, one measurement. Each loads its modules, then gives the
// run to time: module loading is not counted.

const streamOurs = async (url: string, events: number) => {
  const { EventStream, WorkOS } = await import("@workos-relay/core")
  const Effect = await import("effect/Effect")
  const Layer = await import("effect/Layer")
  const Redacted = await import("effect/Redacted")
  const Stream = await import("effect/Stream")
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

const streamSdk = async (url: string, events: number) => {
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

const streamFloor = async (url: string, events: number) => async () => {
  let count = 0
  let after: string | null = null
  while (count < events) {
    const query = `order=asc&limit=${PAGE}${after === null ? "" : `&after=${after}`}`
    const response = await fetch(`${url}/events?${query}`, {
      headers: { authorization: `Bearer ${API_KEY}` }
    })
    const page = JSON.parse(await response.text()) as {
      data: Array<unknown>
      list_metadata: { after: string | null }
    }
    count += page.data.length
    after = page.list_metadata.after
    if (after === null) break
  }
  return Math.min(count, events)
}

const measureHere = async (client: Client, url: string, events: number) => {
  const load = { ours: streamOurs, sdk: streamSdk, floor: streamFloor }[client]
  const run = await load(url, events)
  const cpu = process.cpuUsage()
  const started = performance.now()
  const count = await run()
  const ms = performance.now() - started
  const cpuUsed = process.cpuUsage(cpu)
  if (count !== events) throw new Error(`${client} streamed ${count} events, not ${events}`)
  ;(globalThis as { gc?: () => void }).gc?.()
  const measurement: Measurement = {
    client,
    events,
    ms,
    cpuMs: (cpuUsed.user + cpuUsed.system) / 1000,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    retainedHeapMiB: process.memoryUsage().heapUsed / 2 ** 20
  }
  process.stdout.write(`${JSON.stringify(measurement)}\n`)
}

// ---------------------------------------------------------------------------
// Parent

const table = (rows: ReadonlyArray<Measurement>): string => {
  const header =
    "| client                           |    events |   events/s |   wall ms |    CPU ms | peak RSS, MiB | heap after GC, MiB |\n" +
    "| -------------------------------- | --------: | ---------: | --------: | --------: | ------------: | -----------------: |"
  const lines = rows.map((m) => {
    const cells = [
      clients[m.client].padEnd(32),
      m.events.toLocaleString("en").padStart(9),
      Math.round((m.events / m.ms) * 1000)
        .toLocaleString("en")
        .padStart(10),
      m.ms.toFixed(0).padStart(9),
      m.cpuMs.toFixed(0).padStart(9),
      m.peakRssMiB.toFixed(1).padStart(13),
      m.retainedHeapMiB.toFixed(1).padStart(18)
    ]
    return `| ${cells.join(" | ")} |`
  })
  return [header, ...lines].join("\n")
}

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
    await measure("floor", url, total)
    const best = new Map<string, Measurement>()
    // Rounds alternate the clients, so neither always runs on a colder or busier machine.
    for (let round = 0; round < ROUNDS; round++) {
      for (const client of ["ours", "sdk", "floor"] as const) {
        for (const events of [small, total]) {
          const m = await measure(client, url, events)
          const key = `${client}:${events}`
          const previous = best.get(key)
          best.set(key, {
            ...m,
            ms: Math.min(m.ms, previous?.ms ?? Infinity),
            cpuMs: Math.min(m.cpuMs, previous?.cpuMs ?? Infinity),
            peakRssMiB: Math.max(m.peakRssMiB, previous?.peakRssMiB ?? 0),
            retainedHeapMiB: Math.max(m.retainedHeapMiB, previous?.retainedHeapMiB ?? 0)
          })
        }
      }
    }
    const get = (client: Client, events: number) => best.get(`${client}:${events}`)!
    const rows = (["ours", "sdk", "floor"] as const).flatMap((c) => [get(c, small), get(c, total)])
    const ours = get("ours", total)
    const sdk = get("sdk", total)
    const mib = (m: Measurement) => `${m.peakRssMiB.toFixed(1)} MiB`
    process.stdout.write(
      [
        "",
        `Streaming from the WorkOS stand-in over loopback, ${PAGE} events a page: best times of ${ROUNDS} runs, largest memory; ${nodeDefaults ? "Node's default V8 settings" : `the runner's settings (${RUNNER_FLAGS.join(" ")}, MALLOC_ARENA_MAX=2, MALLOC_MMAP_THRESHOLD_=65536)`}.`,
        "",
        table(rows),
        "",
        `EventStream / SDK loop at ${total.toLocaleString("en")} events: ${(sdk.ms / ours.ms).toFixed(2)}x the events/s, ${(sdk.cpuMs / ours.cpuMs).toFixed(2)}x the events per CPU second`,
        ...(["ours", "sdk", "floor"] as const).map((client) => {
          const few = get(client, small)
          const all = get(client, total)
          const growth = all.peakRssMiB - few.peakRssMiB
          return `Peak RSS of ${clients[client]}: ${mib(few)} at ${small.toLocaleString("en")} events, ${mib(all)} at ${total.toLocaleString("en")} (${growth >= 0 ? "+" : ""}${growth.toFixed(1)} MiB for ${((total - small) / 1000).toLocaleString("en")}k more events); heap kept after GC ${few.retainedHeapMiB.toFixed(1)} and ${all.retainedHeapMiB.toFixed(1)} MiB`
        }),
        ""
      ].join("\n")
    )
  } finally {
    server.process.stdin?.end()
    await server.done
  }
}

const [mode, ...args] = process.argv.slice(2)
if (mode === "serve") await serve(Number(args[0]))
else if (mode === "measure") await measureHere(args[0] as Client, args[1]!, Number(args[2]))
else await main(Number(mode === undefined || mode.startsWith("--") ? 1_000_000 : mode))
