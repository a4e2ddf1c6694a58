/**
 * Backfill at the rate limit: catching up a month of events from a WorkOS stand-in
 * that answers like WorkOS over the internet (150 ms a request plus up to 30 ms of
 * jitter, 6,000 requests a minute, 429 + Retry-After past it), the runner (parallel
 * catch-up within its request budget) against the loop a user would write with
 * `@workos-inc/node` (`listEvents` page after page), both to a sink that does nothing.
 * Then the same on loopback (latency 0, no rate limit, the runner's budget lifted):
 * the cost of the runner's checks against the bare loop.
 *
 *   pnpm turbo build && node --conditions=@workos-relay/source bench/backfill.ts [events] [sdkEvents]
 *
 *   ... bench/backfill.ts loopback [events]   (the loopback half alone)
 *
 * For profiling: BENCH_RUNNER_FLAGS (Node flags for the runner's process, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`; any `--max-semi-space-size` replaces the
 * runner's own V8 flags), BENCH_SOURCE_EXTRA (lines added to the runner's `source:`,
 * e.g. `  catchUp: { enabled: false }`), BENCH_ECHO=1 (the runner's stdout on stderr),
 * BENCH_SDK_FLAGS (Node flags for the SDK loop's process, to profile it the same way).
 *
 * Defaults: 60,000 events over 30 days; the SDK loop reads the first 20,000 of them
 * (its rate is one page per round trip however long it runs; reading all 60,000 would
 * take a minute and a half). The stand-in, the runner and the SDK loop each run in
 * their own process; the runner is the built executable (`dist/bin.js`). The runner's
 * time runs from its first request to the last event at its sink; the SDK loop's from
 * its first request to its last event. Requests and 429s are counted by the stand-in.
 * Both count ids the same way at the destination (the runner's sink, the SDK loop's
 * handler): lost = events - distinct, repeated, out of order. "CPU s" is each client's
 * process CPU time (user + system, all threads) over its run: steadier than wall time
 * on a shared machine.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const self = fileURLToPath(import.meta.url)
const root = Path.join(Path.dirname(self), "..")
const bin = Path.join(root, "dist", "bin.js")
const API_KEY = "sk_test_bench"
const DAY = 86_400_000
const BUDGET = 4_800

const cpuMs = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1000

interface Served {
  readonly requests: number
  readonly throttled: number
  readonly firstAt: number
}

const node = (args: ReadonlyArray<string>, onLine: (line: string) => void) => {
  const source =
    args[0] === bin
      ? (process.env.BENCH_RUNNER_FLAGS ?? "").split(" ").filter((f) => f !== "")
      : [
          "--conditions=@workos-relay/source",
          ...(args[1] === "sdk"
            ? (process.env.BENCH_SDK_FLAGS ?? "").split(" ").filter((f) => f !== "")
            : [])
        ]
  const child = spawn(process.execPath, [...source, ...args], {
    stdio: ["pipe", "pipe", "inherit"]
  })
  let buffered = ""
  child.stdout.setEncoding("utf8")
  child.stdout.on("data", (chunk: string) => {
    buffered += chunk
    let i = buffered.indexOf("\n")
    while (i >= 0) {
      if (process.env.BENCH_ECHO && args[0] === bin)
        process.stderr.write(`${buffered.slice(0, i)}\n`)
      onLine(buffered.slice(0, i))
      buffered = buffered.slice(i + 1)
      i = buffered.indexOf("\n")
    }
  })
  const done = new Promise<number | null>((resolve) => child.on("exit", resolve))
  return { child, done }
}

// ---------------------------------------------------------------------------
// Children

/** The stand-in; on stdin `mark` it starts counting, on `stats` it prints what it served since. */
const serve = async (events: number, latencyMs: number, limited: boolean) => {
  const { WorkOSStandIn } = await import("@workos-relay/testing")
  const standIn = await WorkOSStandIn.start({
    events,
    apiKey: API_KEY,
    seedSpanMs: 30 * DAY - 2 * 3600_000,
    network: {
      latencyMs,
      jitterMs: latencyMs > 0 ? 30 : 0,
      rateLimit: limited ? { requests: 6_000, windowMs: 60_000 } : undefined
    }
  })
  let requests = 0
  let throttled = 0
  process.stdout.write(`URL ${standIn.url}\n`)
  process.stdin.setEncoding("utf8")
  process.stdin.on("data", (text: string) => {
    for (const command of text.split("\n")) {
      if (command === "mark") {
        requests = standIn.requests.length
        throttled = standIn.throttled()
      } else if (command === "stats") {
        const since = standIn.requests.slice(requests)
        const served: Served = {
          requests: since.length,
          throttled: standIn.throttled() - throttled,
          firstAt: since[0]?.at ?? Date.now()
        }
        process.stdout.write(`STATS ${JSON.stringify(served)}\n`)
      }
    }
  })
  process.stdin.on("end", () => void standIn.close().then(() => process.exit(0)))
}

/** The loop a user would write with the official SDK. */
const sdkLoop = async (url: string, events: number) => {
  const { WorkOS } = await import("@workos-inc/node")
  const { hostname, port } = new URL(url)
  const workos = new WorkOS(API_KEY, { apiHostname: hostname, port: Number(port), https: false })
  // The same work per event as the runner's sink (bench/counting-sink.mjs): count its id.
  const ids = new Set<string>()
  let repeated = 0
  let outOfOrder = 0
  let previous = ""
  const handle = async (event: { readonly id: string }) => {
    if (ids.has(event.id)) repeated++
    else ids.add(event.id)
    if (event.id < previous) outOfOrder++
    previous = event.id
  }
  const started = performance.now()
  const cpuAtStart = process.cpuUsage()
  let count = 0
  let after: string | undefined
  while (count < events) {
    const page = await workos.events.listEvents({
      events: [],
      order: "asc",
      limit: 100,
      ...(after === undefined ? {} : { after })
    })
    for (const event of page.data) {
      await handle(event)
      count++
    }
    const next = page.listMetadata.after
    if (next === null || next === undefined) break
    after = next
  }
  const line = {
    events: count,
    ms: performance.now() - started,
    cpuMs: cpuMs(process.cpuUsage(cpuAtStart)),
    distinct: ids.size,
    repeated,
    outOfOrder,
    peakRssMiB: process.resourceUsage().maxRSS / 1024
  }
  process.stdout.write(`BENCH ${JSON.stringify(line)}\n`)
}

// ---------------------------------------------------------------------------
// Parent

interface Row {
  readonly label: string
  readonly events: number
  readonly ms: number
  /** CPU time of the client's process over the run (user + system). */
  readonly cpuMs: number
  readonly requests: number
  readonly throttled: number
  readonly peakRssMiB: number
  readonly lost?: number
  readonly repeated?: number
  readonly outOfOrder?: number
}

const startStandIn = async (events: number, latencyMs: number, limited: boolean) => {
  let url = ""
  const pending: Array<(s: Served) => void> = []
  const proc = node([self, "serve", String(events), String(latencyMs), String(limited)], (line) => {
    if (line.startsWith("URL ")) url = line.slice(4)
    if (line.startsWith("STATS ")) pending.shift()?.(JSON.parse(line.slice(6)) as Served)
  })
  while (url === "") await new Promise((r) => setTimeout(r, 50))
  return {
    url,
    mark: () => proc.child.stdin!.write("mark\n"),
    stats: () =>
      new Promise<Served>((resolve) => {
        pending.push(resolve)
        proc.child.stdin!.write("stats\n")
      }),
    close: async () => {
      proc.child.stdin!.end()
      await proc.done
    }
  }
}

type StandIn = Awaited<ReturnType<typeof startStandIn>>

const runSdk = async (standIn: StandIn, events: number, label: string): Promise<Row> => {
  standIn.mark()
  let result: any
  const run = node([self, "sdk", standIn.url, String(events)], (line) => {
    if (line.startsWith("BENCH ")) result = JSON.parse(line.slice(6))
  })
  await run.done
  const served = await standIn.stats()
  return {
    label,
    events: result.events,
    ms: result.ms,
    cpuMs: result.cpuMs,
    requests: served.requests,
    throttled: served.throttled,
    peakRssMiB: result.peakRssMiB,
    lost: events - result.distinct,
    repeated: result.repeated,
    outOfOrder: result.outOfOrder
  }
}

const runRunner = async (
  standIn: StandIn,
  events: number,
  dir: string,
  label: string,
  maxRequestsPerMinute: number
): Promise<Row> => {
  const config = Path.join(dir, `${label.replace(/\W+/g, "-")}.yaml`)
  Fs.writeFileSync(
    config,
    `source:
  type: workos
  apiKey: ${API_KEY}
  baseUrl: ${standIn.url}
  start: earliest
  maxRequestsPerMinute: ${maxRequestsPerMinute}
${process.env.BENCH_SOURCE_EXTRA ?? ""}
state:
  sqlite: ${Path.join(dir, `${label.replace(/\W+/g, "-")}.db`)}
log: { level: warn, format: json }
sinks:
  count:
    module: ${JSON.stringify(Path.join(root, "bench", "counting-sink.mjs"))}
    target: ${events}
`
  )
  standIn.mark()
  let result: any
  const run = node([bin, "run", "-c", config], (line) => {
    if (line.startsWith("BENCH ")) {
      result = JSON.parse(line.slice(6))
      run.child.kill("SIGTERM")
    }
  })
  await run.done
  if (result === undefined) throw new Error(`${label}: the runner reported nothing`)
  const served = await standIn.stats()
  return {
    label,
    events: result.events,
    // From its first request to its last event: start-up and config loading not counted.
    ms: result.at - served.firstAt,
    cpuMs: result.cpuMs,
    requests: served.requests,
    throttled: served.throttled,
    peakRssMiB: result.peakRssMiB,
    lost: events - result.distinct,
    repeated: result.repeated,
    outOfOrder: result.outOfOrder
  }
}

const rate = (row: Row) => (row.events * 1000) / row.ms
const reqRate = (row: Row) => (row.requests * 1000) / row.ms

const print = (rows: ReadonlyArray<Row>, baseline: Row, ceiling: number | undefined) => {
  const table = [
    [
      "client",
      "events",
      "seconds",
      "events/s",
      "vs SDK loop",
      "CPU s",
      "requests/s",
      "429s",
      "of ceiling",
      "peak RSS MiB",
      "lost",
      "repeated",
      "out of order"
    ],
    ...rows.map((row) => [
      row.label,
      String(row.events),
      (row.ms / 1000).toFixed(1),
      rate(row).toFixed(0),
      `${(rate(row) / rate(baseline)).toFixed(2)}x`,
      (row.cpuMs / 1000).toFixed(2),
      reqRate(row).toFixed(1),
      String(row.throttled),
      ceiling === undefined ? "-" : `${((100 * reqRate(row)) / ceiling).toFixed(0)}%`,
      row.peakRssMiB.toFixed(0),
      row.lost === undefined ? "-" : String(row.lost),
      row.repeated === undefined ? "-" : String(row.repeated),
      row.outOfOrder === undefined ? "-" : String(row.outOfOrder)
    ])
  ]
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)))
  for (const r of table)
    console.log(
      r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
    )
}

const main = async (events: number, sdkEvents: number, loopbackOnly: boolean) => {
  if (!Fs.existsSync(bin)) {
    console.error(`${bin} is missing: run \`pnpm turbo build\` first`)
    process.exit(1)
  }
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "relay-backfill-"))

  // Over the internet: 150 ms a request (+0-30 ms), WorkOS's rate limit.
  let sdkWan: Row | undefined
  let runnerWan: Row | undefined
  if (!loopbackOnly) {
    const wan = await startStandIn(events, 150, true)
    sdkWan = await runSdk(wan, Math.min(events, sdkEvents), "@workos-inc/node listEvents loop")
    runnerWan = await runRunner(wan, events, dir, "workos-relay runner (catch-up)", BUDGET)
    await wan.close()
  }

  // Loopback: no latency, no rate limit; the runner's budget lifted out of the way.
  const lan = await startStandIn(events, 0, false)
  const sdkLan = await runSdk(lan, events, "@workos-inc/node listEvents loop")
  const runnerLan = await runRunner(lan, events, dir, "workos-relay runner", 1_000_000)
  await lan.close()
  Fs.rmSync(dir, { recursive: true, force: true })

  const ceiling = BUDGET / 60
  const mb = (mib: number) => ((mib * 2 ** 20) / 1e6).toFixed(0)
  const loopback = `on loopback ${(rate(runnerLan) / rate(sdkLan)).toFixed(2)}x the SDK loop (${runnerLan.lost} lost, ${runnerLan.repeated} repeated, peak RSS ${mb(runnerLan.peakRssMiB)} MB)`
  if (sdkWan === undefined || runnerWan === undefined) {
    console.log(
      `\nLoopback: ${events} events, latency 0, no rate limit (runner budget lifted). Target: runner >= 1.0x the SDK loop\n`
    )
    print([sdkLan, runnerLan], sdkLan, undefined)
    console.log(`\nRunner ${loopback}.`)
    return
  }
  console.log(
    `\nBackfill: ${events} events over 30 days, stand-in at 150 ms (+0-30 ms jitter) a request, 6000 requests/min (429 + Retry-After past it); runner budget ${BUDGET}/min = ${ceiling} requests/s (${Os.cpus().length} cores, Node ${process.version})`
  )
  console.log(
    "Targets: runner >= 8x the SDK loop's events/s, >= 80% of the budget's ceiling, 0 lost or repeated, peak RSS < 200 MB\n"
  )
  print([sdkWan, runnerWan], sdkWan, ceiling)
  console.log(
    `\nLoopback: latency 0, no rate limit (runner budget lifted). Target: runner >= 1.0x the SDK loop\n`
  )
  print([sdkLan, runnerLan], sdkLan, undefined)
  console.log(
    `\nRunner over the internet: ${(rate(runnerWan) / rate(sdkWan)).toFixed(2)}x the SDK loop, ${((100 * reqRate(runnerWan)) / ceiling).toFixed(0)}% of its budget's ceiling, ${runnerWan.lost} lost, ${runnerWan.repeated} repeated, peak RSS ${mb(runnerWan.peakRssMiB)} MB; ${loopback}.`
  )
}

const [mode, ...rest] = process.argv.slice(2)
if (mode === "serve") await serve(Number(rest[0]), Number(rest[1]), rest[2] === "true")
else if (mode === "sdk") await sdkLoop(rest[0]!, Number(rest[1]))
else if (mode === "loopback") await main(Number(rest[0] ?? 60_000), 0, true)
else await main(Number(mode ?? 60_000), Number(rest[0] ?? 20_000), false)
