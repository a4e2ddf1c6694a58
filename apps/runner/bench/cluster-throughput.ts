/**
 * Cluster throughput: end-to-end events/s of N sources (one unit each) over 1, 2 and 3
 * runner processes of the CLI, with the documented `cluster:` settings.
 *
 *   cd apps/runner && node --conditions=@workos-relay/source bench/cluster-throughput.ts [sources] [events per source]
 *
 * Defaults: 12 sources (12 WorkOS stand-ins, each its own key), 5000 events each. For
 * each cluster size the runners start on a fresh database and settle (each unit on
 * one runner, no move for 3 s); then every stand-in gets its events at once, and the
 * time is taken until the sink (a recording sink taking all sources, batches of 100)
 * holds every id. So process start and the first spread of units are not counted.
 * On a 2-core machine 3 runners cannot show scaling (more processes than cores): the
 * figure is printed all the same, with a note.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { PgClient } from "@effect/sql-pg"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Postgres from "@workos-relay/testing/Postgres"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { SqlClient } from "effect/sql"
import { freePort } from "../test/helpers.ts"

const self = fileURLToPath(import.meta.url)
const root = Path.join(Path.dirname(self), "..")
const bin = Path.join(root, "src", "bin.ts")
const recordingSink = Path.join(root, "test", "fixtures", "recording-sink.mjs")
const sourceCount = Number(process.argv[2] ?? 12)
const perSource = Number(process.argv[3] ?? 5000)
const sizes = [1, 2, 3]

interface Proc {
  readonly child: ChildProcess
  stderr: string
  readonly exited: Promise<number | null>
}

/** The ids a recording sink wrote, read as the file grows (not whole each time: cheap to poll). */
const tail = (file: string) => {
  const ids: Array<string> = []
  let offset = 0
  let partial = ""
  return () => {
    if (!Fs.existsSync(file)) return ids
    const size = Fs.statSync(file).size
    if (size > offset) {
      const fd = Fs.openSync(file, "r")
      const chunk = Buffer.alloc(size - offset)
      Fs.readSync(fd, chunk, 0, chunk.length, offset)
      Fs.closeSync(fd)
      offset = size
      const parts = (partial + chunk.toString("utf8")).split("\n")
      partial = parts.pop()!
      for (const id of parts) if (id !== "") ids.push(id)
    }
    return ids
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const waitFor = async (what: string, check: () => boolean, timeout = 180_000) => {
  const deadline = Date.now() + timeout
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}
const count = (text: string, needle: string) => text.split(needle).length - 1
const alive = (p: Proc) => p.child.exitCode === null && p.child.signalCode === null
const runs = (p: Proc, unit: string) =>
  alive(p) &&
  count(p.stderr, `unit ${unit}: running here`) > count(p.stderr, `unit ${unit}: stopped here`)

/** A fresh database on the server of `url`: a cluster of its own. */
const freshDatabase = (url: string, name: string) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const pg = yield* Layer.build(PgClient.layer({ url: Redacted.make(url) }))
      yield* Context.get(pg, SqlClient.SqlClient).unsafe(`CREATE DATABASE ${name}`)
      const next = new URL(url)
      next.pathname = `/${name}`
      return next.toString()
    }).pipe(Effect.scoped)
  )

const round = async (
  size: number,
  db: { readonly url: string },
  standIns: ReadonlyArray<WorkOSStandIn.StandIn>,
  names: ReadonlyArray<string>
) => {
  const url = await freshDatabase(db.url, `throughput_${size}_${Date.now().toString(36)}`)
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "relay-cluster-throughput-"))
  const log = Path.join(dir, "rec.log")
  const config = Path.join(dir, "relay.yaml")
  Fs.writeFileSync(
    config,
    `sources:
${names.map((name, i) => `  ${name}: { type: workos, apiKey: ${standIns[i]!.apiKey}, baseUrl: ${standIns[i]!.url}, start: latest, pollInterval: 100ms }`).join("\n")}
state:
  postgres: \${PG_URL}
cluster:
  address: 127.0.0.1:\${RELAY_CLUSTER_PORT}
log: { format: json }
sinks:
  rec: { module: ${JSON.stringify(recordingSink)}, path: ${JSON.stringify(log)}, maxEvents: 100 }
`
  )
  const procs: Array<Proc> = []
  for (let i = 0; i < size; i++) {
    const port = await freePort()
    const child = spawn(
      process.execPath,
      ["--conditions=@workos-relay/source", bin, "run", "-c", config],
      {
        env: { ...process.env, PG_URL: url, RELAY_CLUSTER_PORT: String(port) },
        stdio: ["ignore", "ignore", "pipe"]
      }
    )
    const proc: Proc = { child, stderr: "", exited: new Promise((r) => child.on("exit", r)) }
    child.stderr!.on("data", (d) => {
      proc.stderr += d
    })
    procs.push(proc)
  }
  try {
    // Settled: every unit on exactly one runner, the same for 3 s.
    const placement = () =>
      names.map((n) => procs.filter((p) => runs(p, n)).map((p) => procs.indexOf(p)))
    let last = ""
    let since = Date.now()
    await waitFor("the units settle", () => {
      const now = placement()
      const key = JSON.stringify(now)
      if (key !== last) {
        last = key
        since = Date.now()
      }
      return now.every((holders) => holders.length === 1) && Date.now() - since > 3_000
    })
    const perRunner = procs.map((_, i) => placement().filter((h) => h[0] === i).length)
    const before = standIns.map((s) => s.events().length)
    const at = performance.now()
    for (const s of standIns) s.appendGenerated(perSource)
    const ids = standIns.flatMap((s, i) =>
      s
        .events()
        .slice(before[i])
        .map((e) => e.id)
    )
    const wanted = new Set(ids)
    const read = tail(log)
    const seen = new Set<string>()
    let counted = 0
    await waitFor("every event delivered", () => {
      const all = read()
      for (; counted < all.length; counted++) if (wanted.has(all[counted]!)) seen.add(all[counted]!)
      return seen.size === wanted.size
    })
    const seconds = (performance.now() - at) / 1000
    const got = read().filter((id) => wanted.has(id))
    return {
      size,
      seconds,
      rate: ids.length / seconds,
      perRunner,
      events: ids.length,
      repeated: got.length - new Set(got).size
    }
  } finally {
    for (const p of procs) if (alive(p)) p.child.kill("SIGTERM")
    await Promise.all(procs.map((p) => p.exited))
  }
}

const main = async () => {
  const names = Array.from({ length: sourceCount }, (_, i) => `env${i + 1}`)
  const [db, ...standIns] = await Promise.all([
    Postgres.start(),
    ...names.map((name, i) =>
      WorkOSStandIn.start({ apiKey: `sk_test_${name}`, events: 1, seed: 100 + i })
    )
  ])
  try {
    const results = []
    for (const size of sizes) {
      const r = await round(size, db, standIns, names)
      results.push(r)
      console.log(
        `${size} runner(s): ${r.events} events in ${r.seconds.toFixed(2)} s = ${Math.round(r.rate)} events/s; units per runner: ${r.perRunner.join(", ")}; repeated ${r.repeated}`
      )
    }
    const one = results[0]!.rate
    console.log("")
    console.log(
      `${sourceCount} sources x ${perSource} events, ${Os.cpus().length} cores; against 1 runner: ${results.map((r) => `${r.size}: x${(r.rate / one).toFixed(2)}`).join(", ")}`
    )
    if (Os.cpus().length < 3)
      console.log(
        `(${Os.cpus().length} cores: more than ${Os.cpus().length} runner processes cannot show scaling here, they share the cores with Postgres and the stand-ins)`
      )
  } finally {
    await Promise.all([db.stop(), ...standIns.map((s) => s.close())])
  }
}

await main()
