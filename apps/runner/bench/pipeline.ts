/**
 * End-to-end throughput of the runner: events from the WorkOS stand-in, through the
 * real client, EventStream, the pipeline (filter, batch, deliver, checkpoint in
 * SQLite) to a no-op sink; against the loop a user would write with
 * `@workos-inc/node` (`listEvents` paging, then `for ... await` each event), in the
 * same run, on the same stand-in.
 *
 *   node --conditions=@workos-relay/source bench/pipeline.ts [events]   (default 1000000)
 *
 * The stand-in, the runner and the SDK loop each run in a process of their own, so a
 * peak RSS is that client's alone. The runner's time runs from its sink being made to
 * its last event delivered (process start-up is not counted); the SDK loop's from its
 * first request to its last event.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const self = fileURLToPath(import.meta.url)
const root = Path.join(Path.dirname(self), "..")
const API_KEY = "sk_test_bench"

interface Measurement {
  readonly events: number
  readonly ms: number
  readonly peakRssMiB: number
  /** RSS once loaded, before the first event (the runner only). */
  readonly startRssMiB?: number
}

const node = (args: ReadonlyArray<string>, onLine: (line: string, kill: () => void) => void) => {
  const child = spawn(process.execPath, ["--conditions=@workos-relay/source", ...args], {
    stdio: ["pipe", "pipe", "inherit"]
  })
  let buffered = ""
  child.stdout.setEncoding("utf8")
  child.stdout.on("data", (chunk: string) => {
    buffered += chunk
    let i = buffered.indexOf("\n")
    while (i >= 0) {
      onLine(buffered.slice(0, i), () => child.kill("SIGTERM"))
      buffered = buffered.slice(i + 1)
      i = buffered.indexOf("\n")
    }
  })
  const done = new Promise<number | null>((resolve) => child.on("exit", resolve))
  return { child, done }
}

// ---------------------------------------------------------------------------
// Children

const serve = async (events: number) => {
  const { WorkOSStandIn } = await import("@workos-relay/testing")
  const standIn = await WorkOSStandIn.start({ events, apiKey: API_KEY })
  process.stdout.write(`${standIn.url}\n`)
  process.stdin.resume()
  process.stdin.on("end", () => void standIn.close().then(() => process.exit(0)))
}

/** The loop a user would write with the official SDK. */
const sdkLoop = async (url: string, events: number) => {
  const { WorkOS } = await import("@workos-inc/node")
  const { hostname, port } = new URL(url)
  const workos = new WorkOS(API_KEY, { apiHostname: hostname, port: Number(port), https: false })
  const handle = async (_event: unknown) => {}
  const started = performance.now()
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
  const line: Measurement = {
    events: count,
    ms: performance.now() - started,
    peakRssMiB: process.resourceUsage().maxRSS / 1024
  }
  process.stdout.write(`BENCH ${JSON.stringify(line)}\n`)
}

// ---------------------------------------------------------------------------
// Parent

const measure = async (args: ReadonlyArray<string>): Promise<Measurement> => {
  let result: Measurement | undefined
  const run = node(args, (line, kill) => {
    if (line.startsWith("BENCH ")) {
      result = JSON.parse(line.slice(6)) as Measurement
      kill()
    }
  })
  await run.done
  if (result === undefined) throw new Error(`${args.join(" ")} reported nothing`)
  return result
}

const main = async (events: number) => {
  let url = ""
  const standIn = node([self, "serve", String(events)], (line) => {
    if (url === "") url = line
  })
  while (url === "") await new Promise((r) => setTimeout(r, 50))

  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "relay-bench-"))
  const config = Path.join(dir, "relay.yaml")
  Fs.writeFileSync(
    config,
    `source:
  type: workos
  apiKey: ${API_KEY}
  baseUrl: ${url}
  start: earliest
state:
  sqlite: ${Path.join(dir, "state.db")}
log: { level: warn, format: json }
sinks:
  noop:
    module: ${JSON.stringify(Path.join(root, "bench", "noop-sink.mjs"))}
    target: ${events}
`
  )
  const baselineEvents = Math.min(events, 100_000)
  const sdk = await measure([self, "sdk", url, String(baselineEvents)])
  const runner = await measure([Path.join(root, "src", "bin.ts"), "run", "-c", config])
  standIn.child.stdin?.end()
  await standIn.done
  Fs.rmSync(dir, { recursive: true, force: true })

  const rate = (m: Measurement) => (m.events * 1000) / m.ms
  const rows = [
    [
      "client",
      "events",
      "seconds",
      "events/s",
      "vs SDK loop",
      "peak RSS (MiB)",
      "RSS before 1st event"
    ],
    [
      "@workos-inc/node listEvents + for-await",
      String(sdk.events),
      (sdk.ms / 1000).toFixed(1),
      rate(sdk).toFixed(0),
      "1.00x",
      sdk.peakRssMiB.toFixed(0),
      "-"
    ],
    [
      "workos-relay runner -> no-op sink",
      String(runner.events),
      (runner.ms / 1000).toFixed(1),
      rate(runner).toFixed(0),
      `${(rate(runner) / rate(sdk)).toFixed(2)}x`,
      runner.peakRssMiB.toFixed(0),
      runner.startRssMiB?.toFixed(0) ?? "-"
    ]
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  console.log(
    `\nEnd to end from the WorkOS stand-in (${Os.cpus().length} cores, Node ${process.version}); targets: >= 20000 events/s, peak RSS < 150 MiB\n`
  )
  for (const r of rows)
    console.log(
      r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
    )
}

const [mode, ...rest] = process.argv.slice(2)
if (mode === "serve") await serve(Number(rest[0]))
else if (mode === "sdk") await sdkLoop(rest[0]!, Number(rest[1]))
else await main(Number(mode ?? 1_000_000))
