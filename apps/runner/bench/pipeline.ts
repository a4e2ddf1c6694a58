/**
 * End-to-end throughput of the runner: events from the WorkOS stand-in, through the
 * real client, EventStream, the pipeline (filter, batch, deliver, checkpoint in
 * SQLite) to a no-op sink; against the loop a user would write with
 * `@workos-inc/node` (`listEvents` paging, then `for ... await` each event), in the
 * same run, on the same stand-in. To an audit log: the audit-log sink (SQLite) against
 * that loop awaiting one INSERT per event, with WAL (the target's baseline) and with
 * SQLite's defaults.
 *
 *   node --conditions=@workos-relay/source bench/pipeline.ts [events]   (default 1000000)
 *
 * The stand-in, the runner and the SDK loop each run in a process of their own, so a
 * peak RSS is that client's alone. The runner is the built executable (`dist/bin.js`,
 * as `npm install` gives it to users; build first: `pnpm turbo build`), not
 * `src/bin.ts`: Node's TypeScript stripping alone adds ~48 MiB of RSS that no user pays.
 * The runner's time runs from its sink being made to
 * its last event delivered (process start-up is not counted); the SDK loop's from its
 * first request to its last event. The runner's paths run three rounds each (a fresh
 * start from the earliest event every time) and report the median rate; the peak RSS
 * reported is the highest of the rounds.
 *
 * Against another build of the runner (the hot path's cost of a change), in the same run:
 *
 *   node --conditions=@workos-relay/source bench/pipeline.ts [events] --baseline <dir>/dist/bin.js
 *
 * runs only the runner -> no-op sink, alternating this build and the baseline round by
 * round (five each), with no request budget to hold either back (`--otlp`: this build
 * exporting traces, metrics and logs to a collector that drops them), and prints both
 * medians and their ratios: of events/s, and of the runner's CPU time per event
 * (steadier on a shared machine: other processes slow the wall clock, not the CPU
 * a build spends), and of peak RSS. The baseline's `dist`
 * must sit where it resolves this package's dependencies (e.g. a copy of an older
 * build, with its package.json beside `dist`, under `apps/runner/node_modules/.relay-baseline/`).
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const self = fileURLToPath(import.meta.url)
const root = Path.join(Path.dirname(self), "..")
const API_KEY = "sk_test_bench"
const auditRounds = 3
/** Rounds of the runner to the no-op sink: the VM's speed moves from minute to minute. */
const noopRounds = 3
const bin = Path.join(root, "dist", "bin.js")

/** The newest modification time under a folder. */
const newest = (dir: string): number =>
  Math.max(
    ...Fs.readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => Fs.statSync(Path.join(entry.parentPath, entry.name)).mtimeMs)
  )

interface Measurement {
  readonly events: number
  readonly ms: number
  readonly peakRssMiB: number
  /** RSS once loaded, before the first event (the runner only). */
  readonly startRssMiB?: number
  /** CPU time (user + system, all threads) from the first event on (the runner to the no-op sink). */
  readonly cpuMs?: number
}

const node = (args: ReadonlyArray<string>, onLine: (line: string, kill: () => void) => void) => {
  // The built runner runs as users run it; the bench's own children run from source.
  const source = args[0]!.endsWith(`${Path.sep}dist${Path.sep}bin.js`)
    ? []
    : ["--conditions=@workos-relay/source"]
  const child = spawn(process.execPath, [...source, ...args], {
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

/**
 * The same loop, awaiting one insert per event into SQLite, as a user would write an
 * audit log: with SQLite's defaults (a rollback journal), or tuned with WAL (the
 * baseline the target is judged against: the faster of the two).
 */
const sdkSqliteLoop = async (url: string, events: number, file: string, journal: string) => {
  const { WorkOS } = await import("@workos-inc/node")
  const { DatabaseSync } = await import("node:sqlite")
  const db = new DatabaseSync(file)
  if (journal === "wal") db.exec("PRAGMA journal_mode = WAL")
  db.exec(
    "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, type TEXT, created_at TEXT, json TEXT)"
  )
  const insert = db.prepare("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?)")
  const save = async (event: any) => {
    insert.run(event.id, event.event, String(event.createdAt), JSON.stringify(event))
  }
  const { hostname, port } = new URL(url)
  const workos = new WorkOS(API_KEY, { apiHostname: hostname, port: Number(port), https: false })
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
      if (count >= events) break
      await save(event)
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

/** Runs the runner on a config with `http` on `port` until `sink` has delivered `events`; timed from its first delivery. */
const measureByMetrics = async (
  config: string,
  port: number,
  sink: string,
  events: number
): Promise<Measurement> => {
  const run = node([bin, "run", "-c", config], () => {})
  const delivered = async () => {
    try {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      const match = new RegExp(
        `workos_relay_events_delivered_total\\{sink="${sink}"\\} (\\d+)`
      ).exec(text)
      return match === null ? 0 : Number(match[1])
    } catch {
      return 0
    }
  }
  let first = 0
  let started = 0
  while (true) {
    const n = await delivered()
    if (n > 0 && started === 0) {
      started = performance.now()
      first = n
    }
    if (n >= events) break
    await new Promise((r) => setTimeout(r, 20))
  }
  const ms = performance.now() - started
  const peakRssMiB = peakRssOf(run.child.pid)
  run.child.kill("SIGTERM")
  await run.done
  return { events: events - first, ms, peakRssMiB }
}

/**
 * A running process's peak RSS so far (Linux's `VmHWM`; the runner re-executes itself
 * in the same pid), or NaN where /proc cannot tell.
 */
const peakRssOf = (pid: number | undefined): number => {
  try {
    const status = Fs.readFileSync(`/proc/${pid}/status`, "utf8")
    const kib = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1]
    return kib === undefined ? Number.NaN : Number(kib) / 1024
  } catch {
    return Number.NaN
  }
}

const freePort = async () => {
  const { createServer } = await import("node:net")
  return new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })
}

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

/** A sink for OTLP exports: reads each request and answers 200 (`--otlp`). */
const otlpSink = async () => {
  const { createServer } = await import("node:http")
  return new Promise<{ url: string; close: () => void }>((resolve) => {
    const server = createServer((request, response) => {
      request.resume()
      request.on("end", () => response.writeHead(200).end("{}"))
    }).listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      resolve({ url: `http://127.0.0.1:${port}`, close: () => server.close() })
    })
  })
}

const main = async (events: number, baseline: string | undefined, otlp: boolean) => {
  for (const dir of [
    Path.join(root, "src"),
    Path.join(root, "..", "..", "packages", "core", "src")
  ]) {
    const dist = Path.join(dir, "..", "dist")
    if (!Fs.existsSync(dist) || newest(dir) > newest(dist)) {
      console.error(`${dist} is missing or older than its sources: run \`pnpm turbo build\` first`)
      process.exit(1)
    }
  }
  let url = ""
  const standIn = node([self, "serve", String(events)], (line) => {
    if (url === "") url = line
  })
  while (url === "") await new Promise((r) => setTimeout(r, 50))

  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "relay-bench-"))
  /** The runner to the no-op sink, from the earliest event (fresh checkpoints each round). */
  // Comparing builds: the request budget (4,800 a minute by default, 8,000 events/s
  // at 100 a page) would be all either measured, not the CPU each spends per event.
  const budget = baseline === undefined ? "" : "\n  maxRequestsPerMinute: 1000000"
  // `--otlp`: this build exports traces, metrics and logs (the baseline as it is).
  const collector = otlp ? await otlpSink() : undefined
  const runNoop = (round: number, runnerBin = bin) => {
    const config = Path.join(dir, `noop-${round}.yaml`)
    const telemetry =
      collector !== undefined && runnerBin === bin
        ? `telemetry: { otlp: { endpoint: ${collector.url} } }\n`
        : ""
    Fs.writeFileSync(
      config,
      `source:
  type: workos
  apiKey: ${API_KEY}
  baseUrl: ${url}
  start: earliest${budget}
state:
  sqlite: ${Path.join(dir, `noop-state-${round}.db`)}
log: { level: warn, format: json }
${telemetry}sinks:
  noop:
    module: ${JSON.stringify(Path.join(root, "bench", "noop-sink.mjs"))}
    target: ${events}
`
    )
    return measure([runnerBin, "run", "-c", config])
  }
  if (baseline !== undefined) {
    await compare(events, runNoop, baseline)
    if (collector !== undefined)
      console.log("  (this build exporting traces, metrics and logs over OTLP/HTTP, protobuf)")
    collector?.close()
    standIn.child.stdin?.end()
    await standIn.done
    Fs.rmSync(dir, { recursive: true, force: true })
    return
  }
  const baselineEvents = Math.min(events, 100_000)
  const sdk = await measure([self, "sdk", url, String(baselineEvents)])
  const runners: Array<Measurement> = []
  for (let round = 0; round < noopRounds; round++) runners.push(await runNoop(round))

  // To an audit log in SQLite: the audit-log sink against the SDK loop with one insert per event.
  const auditEvents = Math.min(events, 100_000)
  const naiveEvents = Math.min(events, 20_000)
  const port = await freePort()
  /** The runner into a fresh audit log (and fresh checkpoints). */
  const runAudit = (round: number) => {
    const config = Path.join(dir, `audit-${round}.yaml`)
    Fs.writeFileSync(
      config,
      `source: { type: workos, apiKey: ${API_KEY}, baseUrl: ${JSON.stringify(url)}, start: earliest }
state: { sqlite: ${JSON.stringify(Path.join(dir, `audit-state-${round}.db`))} }
http: { address: "127.0.0.1:${port}" }
log: { level: warn, format: json }
sinks:
  audit: { type: audit-log, path: ${JSON.stringify(Path.join(dir, `audit-${round}.db`))} }
`
    )
    return measureByMetrics(config, port, "audit", auditEvents)
  }
  const runNaive = (round: number) =>
    measure([
      self,
      "sdk-sqlite",
      url,
      String(naiveEvents),
      Path.join(dir, `naive-${round}.db`),
      "wal"
    ])
  // The naive loop waits on an fsync per event and the runner on the CPU: the shared
  // VM's disk and CPU vary apart from minute to minute, so three alternating rounds
  // of each, and the ratio of their medians.
  const rounds: Array<{ naive: Measurement; runner: Measurement }> = []
  for (let round = 0; round < auditRounds; round++)
    rounds.push({ naive: await runNaive(round), runner: await runAudit(round) })
  const sdkAuditDefault = await measure([
    self,
    "sdk-sqlite",
    url,
    String(Math.min(events, 5_000)),
    Path.join(dir, "naive-default.db"),
    "default"
  ])
  standIn.child.stdin?.end()
  await standIn.done
  Fs.rmSync(dir, { recursive: true, force: true })

  const rate = (m: Measurement) => (m.events * 1000) / m.ms
  const median = (ms: ReadonlyArray<Measurement>) =>
    [...ms].sort((a, b) => rate(a) - rate(b))[Math.floor(ms.length / 2)]!
  const runner = median(runners)
  // The worst round's: the target is a ceiling.
  const peakRssMiB = Math.max(...runners.map((m) => m.peakRssMiB))
  const sdkAudit = median(rounds.map((r) => r.naive))
  const runnerAudit = median(rounds.map((r) => r.runner))
  const roundRatios = rounds.map((r) => rate(r.runner) / rate(r.naive))
  const auditPeakRssMiB = Math.max(...rounds.map((r) => r.runner.peakRssMiB))
  const mib = (value: number) => (Number.isNaN(value) ? "-" : value.toFixed(0))
  /** events, seconds, events/s and the ratio to `baseline`: the columns every row shares. */
  const timing = (m: Measurement, baseline: Measurement) => [
    String(m.events),
    (m.ms / 1000).toFixed(1),
    rate(m).toFixed(0),
    `${(rate(m) / rate(baseline)).toFixed(2)}x`
  ]
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
      ...timing(sdk, sdk),
      sdk.peakRssMiB.toFixed(0),
      "-"
    ],
    [
      `workos-relay runner -> no-op sink (median of ${noopRounds} rounds)`,
      ...timing(runner, sdk),
      peakRssMiB.toFixed(0),
      runner.startRssMiB?.toFixed(0) ?? "-"
    ]
  ]
  const auditRows = [
    [
      `to an audit log in SQLite (median of ${auditRounds} rounds)`,
      "events",
      "seconds",
      "events/s",
      "vs SDK loop (WAL)",
      "peak RSS (MiB)"
    ],
    [
      "@workos-inc/node listEvents + for-await insert (SQLite defaults)",
      ...timing(sdkAuditDefault, sdkAudit),
      mib(sdkAuditDefault.peakRssMiB)
    ],
    [
      "@workos-inc/node listEvents + for-await insert (WAL)",
      ...timing(sdkAudit, sdkAudit),
      mib(sdkAudit.peakRssMiB)
    ],
    [
      "workos-relay runner -> audit-log sink (SQLite)",
      ...timing(runnerAudit, sdkAudit),
      mib(auditPeakRssMiB)
    ]
  ]
  console.log(
    `\nEnd to end from the WorkOS stand-in (${Os.cpus().length} cores, Node ${process.version}); targets: >= 20000 events/s, peak RSS under 150 MB\n`
  )
  const print = (table: ReadonlyArray<ReadonlyArray<string>>) => {
    const w = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)))
    for (const r of table)
      console.log(r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join("  "))
  }
  print(rows)
  console.log(
    `\nRound by round, runner -> no-op sink: ${runners.map((m) => `${rate(m).toFixed(0)} events/s (peak RSS ${m.peakRssMiB.toFixed(0)} MiB)`).join(", ")}.`
  )
  console.log(
    "\nTarget: the runner to an audit log at least 5x the SDK loop with an insert per event\n"
  )
  print(auditRows)
  console.log(
    `\nRound by round, runner / WAL loop: ${roundRatios.map((r, i) => `${r.toFixed(2)}x (runner peak RSS ${mib(rounds[i]!.runner.peakRssMiB)} MiB)`).join(", ")}.`
  )
  console.log(
    `The runner is ${(rate(runnerAudit) / rate(sdkAuditDefault)).toFixed(2)}x the same loop on SQLite's defaults (rollback journal, a few fsyncs per insert).`
  )
  console.log(
    `Peak RSS of the runner -> no-op sink, the highest of its rounds: ${peakRssMiB.toFixed(0)} MiB = ${((peakRssMiB * 2 ** 20) / 1e6).toFixed(0)} MB.`
  )
}

/** This build against `baseline`, round by round in turns: the VM's speed drifts, both see the same drift. */
const compare = async (
  events: number,
  runNoop: (round: number, runnerBin: string) => Promise<Measurement>,
  baseline: string
) => {
  const rounds = 5
  const current: Array<Measurement> = []
  const before: Array<Measurement> = []
  for (let round = 0; round < rounds; round++) {
    // Who goes first alternates too: a warmer disk cache favours neither.
    const pair = round % 2 === 0 ? [bin, baseline] : [baseline, bin]
    for (const [i, runner] of pair.entries()) {
      const m = await runNoop(round * 2 + i, runner)
      ;(runner === bin ? current : before).push(m)
    }
  }
  const rate = (m: Measurement) => (m.events * 1000) / m.ms
  /** Microseconds of CPU per event. */
  const cpu = (m: Measurement) => ((m.cpuMs ?? Number.NaN) * 1000) / m.events
  const median = (values: ReadonlyArray<number>) =>
    [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
  const show = (values: ReadonlyArray<number>, digits: number) =>
    values.map((v) => v.toFixed(digits)).join(", ")
  console.log(
    `\nrunner -> no-op sink, ${events} events a round, ${rounds} rounds each, in turns (${Os.cpus().length} cores, Node ${process.version})`
  )
  for (const [label, ms] of [
    [`this build (${bin})`, current],
    [`baseline (${baseline})`, before]
  ] as const) {
    console.log(`  ${label}`)
    console.log(
      `    events/s:             ${show(ms.map(rate), 0)}; median ${median(ms.map(rate)).toFixed(0)}`
    )
    console.log(
      `    CPU us/event:         ${show(ms.map(cpu), 2)}; median ${median(ms.map(cpu)).toFixed(2)}`
    )
    const rss = ms.map((m) => m.peakRssMiB)
    console.log(`    peak RSS MiB:         ${show(rss, 0)}; median ${median(rss).toFixed(0)}`)
  }
  const rssRatio =
    median(current.map((m) => m.peakRssMiB)) / median(before.map((m) => m.peakRssMiB))
  console.log(
    `  this build / baseline: events/s ${(median(current.map(rate)) / median(before.map(rate))).toFixed(3)}, CPU per event ${(median(current.map(cpu)) / median(before.map(cpu))).toFixed(3)}, peak RSS ${rssRatio.toFixed(3)}`
  )
}

const args = process.argv.slice(2)
const flag = args.indexOf("--baseline")
const baselineBin = flag < 0 ? undefined : Path.resolve(args[flag + 1]!)
if (flag >= 0) args.splice(flag, 2)
const otlpFlag = args.indexOf("--otlp")
if (otlpFlag >= 0) args.splice(otlpFlag, 1)
const [mode, ...rest] = args
if (mode === "serve") await serve(Number(rest[0]))
else if (mode === "sdk") await sdkLoop(rest[0]!, Number(rest[1]))
else if (mode === "sdk-sqlite")
  await sdkSqliteLoop(rest[0]!, Number(rest[1]), rest[2]!, rest[3] ?? "wal")
else await main(Number(mode ?? 1_000_000), baselineBin, otlpFlag >= 0)
