/**
 * Shared by the cluster tests (`Cluster.test.ts`, `ClusterRolling.test.ts`): runner
 * processes of the CLI, what they said (which units they run), the destinations'
 * ids counted (duplicates kept), and the ports effect/cluster's hash ring spreads
 * units over.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import type { WorkOSStandIn } from "@workos-relay/testing"
import * as Context from "effect/Context"
import * as RunnerAddress from "effect/cluster/RunnerAddress"
import * as Effect from "effect/Effect"
import * as Hash from "effect/Hash"
import * as HashRing from "effect/HashRing"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { SqlClient } from "effect/sql"
import { singletonName } from "../src/cluster/Unit.ts"
import { freePort, recorded, recordingSink } from "./helpers.ts"

export interface Proc {
  readonly name: string
  /** Its cluster port: it is the runner 127.0.0.1:port. */
  readonly port: number
  readonly child: ChildProcess
  stderr: string
  readonly exited: Promise<number | null>
}

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")

/** Every runner started in this test file (to kill -9 what a failed test left). */
const procs: Array<Proc> = []

/** kill -9 every runner still alive. */
export const killAll = () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL")
}

/** `workos-relay run -c config` on the Postgres at `url` (as `PG_URL`), cluster port `port`. */
export const runner = async (
  name: string,
  config: string,
  options: { readonly url: string; readonly port?: number | undefined }
): Promise<Proc> => {
  const port = options.port ?? (await freePort())
  const child = spawn(
    process.execPath,
    ["--conditions=@workos-relay/source", bin, "run", "-c", config],
    {
      env: { ...process.env, PG_URL: options.url, RELAY_CLUSTER_PORT: String(port) },
      stdio: ["ignore", "pipe", "pipe"]
    }
  )
  const proc: Proc = {
    name,
    port,
    child,
    stderr: "",
    exited: new Promise((r) => child.on("exit", r))
  }
  child.stderr!.on("data", (d) => {
    proc.stderr += d
  })
  child.stdout!.resume()
  procs.push(proc)
  return proc
}

/** `workos-relay status` with the runners' config, to its end. */
export const status = (config: string, url: string) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--conditions=@workos-relay/source", bin, "status", "-c", config],
      {
        env: { ...process.env, PG_URL: url, RELAY_CLUSTER_PORT: "1" },
        stdio: ["ignore", "pipe", "pipe"]
      }
    )
    let out = ""
    let err = ""
    child.stdout!.on("data", (d) => (out += d))
    child.stderr!.on("data", (d) => (err += d))
    child.on("exit", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`status: ${code} ${err}`))
    )
  })

/** How many times `p` started the unit (its log says so each time). */
export const runningHere = (p: Proc, unit = "default") =>
  p.stderr.split(`unit ${unit}: running here`).length - 1
export const stoppedHere = (p: Proc, unit = "default") =>
  p.stderr.split(`unit ${unit}: stopped here`).length - 1
/** The runners that started the unit last and have not stopped it since (one, when settled). */
export const holder = (ps: ReadonlyArray<Proc>, unit = "default") =>
  ps.filter(
    (p) =>
      p.child.exitCode === null &&
      p.child.signalCode === null &&
      runningHere(p, unit) > stoppedHere(p, unit)
  )

/** The `workos_relay_cluster_unit_running` line of `source` on `p`'s /metrics (undefined: none). */
export const unitRunningLine = async (p: Proc, source: string) => {
  const metricsPort = /health and metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr)?.[1]
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
  const line = metrics
    .split("\n")
    .find(
      (l) =>
        l.startsWith("workos_relay_cluster_unit_running{") &&
        l.includes(`source="${source}"`) &&
        l.includes(`runner="127.0.0.1:${p.port}"`)
    )
  return { line, metrics }
}

/** Ids in the audit log, with how often each is there. */
export const audited = (file: string): Map<string, number> => {
  const counts = new Map<string, number>()
  if (!Fs.existsSync(file)) return counts
  const sqlite = new DatabaseSync(file, { readOnly: true })
  try {
    for (const row of sqlite.prepare("SELECT id FROM audit_records").all() as Array<{ id: string }>)
      counts.set(row.id, (counts.get(row.id) ?? 0) + 1)
  } catch {
    // the sink has not created its tables yet
  } finally {
    sqlite.close()
  }
  return counts
}

/** The audit log's ids in the order it appended them (duplicates kept). */
export const auditedInOrder = (file: string): Array<string> => {
  const sqlite = new DatabaseSync(file, { readOnly: true })
  try {
    return (
      sqlite.prepare("SELECT id FROM audit_records ORDER BY seq").all() as Array<{ id: string }>
    ).map((r) => r.id)
  } finally {
    sqlite.close()
  }
}

/** Ids delivered more than once, and how many extra deliveries in all. */
export const repeats = (got: ReadonlyArray<string>) => {
  const seen = new Map<string, number>()
  for (const id of got) seen.set(id, (seen.get(id) ?? 0) + 1)
  let extra = 0
  for (const n of seen.values()) extra += n - 1
  return { distinct: seen.size, extra }
}

/** Runs `statements` on the Postgres at `url`; the last one's rows. */
export const sqlAt = (url: string, ...statements: ReadonlyArray<string>) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const { PgClient } = yield* Effect.promise(() => import("@effect/sql-pg"))
      const pg = yield* Layer.build(PgClient.layer({ url: Redacted.make(url) }))
      const sql = Context.get(pg, SqlClient.SqlClient)
      let rows: ReadonlyArray<Record<string, unknown>> = []
      for (const statement of statements)
        rows = yield* sql.unsafe<Record<string, unknown>>(statement)
      return rows
    }).pipe(Effect.scoped)
  )

/** A fresh database on the server at `url`: a cluster of its own, no runner of before. */
export const freshDatabase = async (url: string, name: string) => {
  await sqlAt(url, `CREATE DATABASE ${name}`)
  const fresh = new URL(url)
  fresh.pathname = `/${name}`
  return fresh.toString()
}

/**
 * Which of the runners on `ports` effect/cluster gives each unit of `names` to, the
 * way its `Sharding` computes it (a hash ring of the runners' addresses over 64 shards,
 * a singleton on shard `|hash(singleton name) % 64| + 1`). Only used to pick ports that spread
 * the units; the tests check the spread on the runners themselves.
 */
export const assignment = (ports: ReadonlyArray<number>, names: ReadonlyArray<string>) => {
  const ring = HashRing.make<RunnerAddress.RunnerAddress>()
  for (const port of ports) HashRing.add(ring, RunnerAddress.make("127.0.0.1", port), { weight: 1 })
  const shards = HashRing.getShards(ring, 64)!
  return names.map((name) => shards[Math.abs(Hash.string(singletonName({ name })) % 64)]!.port)
}

/**
 * `got` (one source's ids at a sink, as delivered) is `all` in order, each at least
 * once, where each of at most `moves` restarts may deliver again at most `maxBatch` ids
 * right before it: `all[0, k1) all[j2, k2) ...` with `k - j <= maxBatch`. The problem, or
 * undefined.
 */
export const inOrderAroundMoves = (
  got: ReadonlyArray<string>,
  all: ReadonlyArray<string>,
  moves: number,
  maxBatch: number
): string | undefined => {
  let next = 0 // the next id never delivered
  let at = 0 // where in `all` the delivery is now
  let restarts = 0
  for (const id of got) {
    if (at < all.length && id === all[at]) {
      at++
      next = Math.max(next, at)
      continue
    }
    const j = all.indexOf(id)
    if (j < 0) return `${id} is not an id of this source`
    if (j > next) return `${id} delivered before ${all[next]}: out of order`
    if (next - j > maxBatch) return `${next - j} ids delivered again at once, more than a batch`
    if (++restarts > moves) return `${restarts} restarts, more than the ${moves} move(s)`
    at = j + 1
    next = Math.max(next, at)
  }
  return next === all.length ? undefined : `only ${next} of ${all.length} ids`
}

/**
 * Where the runners' logs show `unit` running on two of them at once: a start (its
 * "running here", logged after it claimed the unit's token) before the previous
 * holder's "stopped here" (logged before its runner let the shard go). A copy never
 * stopped counts as running to the end. The first overlap found, or undefined.
 */
export const overlap = (ps: ReadonlyArray<Proc>, unit: string): string | undefined => {
  const spans: Array<{ readonly runner: string; readonly from: number; to: number }> = []
  for (const p of ps) {
    let open: { runner: string; from: number; to: number } | undefined
    for (const line of p.stderr.split("\n")) {
      if (!line.includes(`unit ${unit}: `)) continue
      let entry: { message?: string; timestamp?: string }
      try {
        entry = JSON.parse(line)
      } catch {
        continue
      }
      const at = Date.parse(entry.timestamp ?? "")
      if (entry.message?.startsWith(`unit ${unit}: running here`)) {
        open = { runner: p.name, from: at, to: Number.POSITIVE_INFINITY }
        spans.push(open)
      } else if (entry.message?.startsWith(`unit ${unit}: stopped here`) && open !== undefined) {
        open.to = at
        open = undefined
      }
    }
  }
  spans.sort((x, y) => x.from - y.from)
  for (let i = 1; i < spans.length; i++) {
    const [before, after] = [spans[i - 1]!, spans[i]!]
    if (after.from < before.to)
      return `${unit} started on ${after.runner} at ${new Date(after.from).toISOString()} while on ${before.runner} (stopped ${Number.isFinite(before.to) ? new Date(before.to).toISOString() : "never"})`
  }
  return undefined
}

/** A cluster of several sources, one WorkOS stand-in each, as the tests write it. */
export interface SourcesCluster {
  readonly names: ReadonlyArray<string>
  readonly standIns: ReadonlyArray<WorkOSStandIn.StandIn>
  /** The sources the recording sink takes (the audit log takes them all). */
  readonly recSources: ReadonlyArray<string>
  readonly maxEvents: number
  readonly lockExpiry: string
  readonly lockRefresh: string
}

/**
 * Writes `relay.yaml` in `dir` for `cluster`: its sources on the Postgres at `PG_URL`,
 * an audit log taking every source and a recording sink (`maxEvents` a batch, 20 ms a
 * delivery) taking `recSources`. Where its config, recording and audit log are.
 */
export const writeSourcesConfig = (dir: string, cluster: SourcesCluster) => {
  const config = Path.join(dir, "relay.yaml")
  const log = Path.join(dir, "rec.log")
  const audit = Path.join(dir, "audit.db")
  const sources = cluster.names
    .map((name, i) => {
      const standIn = cluster.standIns[i]!
      return `  ${name}: { type: workos, apiKey: ${standIn.apiKey}, baseUrl: ${standIn.url}, start: earliest, pollInterval: 50ms }`
    })
    .join("\n")
  Fs.writeFileSync(
    config,
    `sources:
${sources}
state:
  postgres: \${PG_URL}
cluster:
  address: 127.0.0.1:\${RELAY_CLUSTER_PORT}
  lockExpiry: ${cluster.lockExpiry}
  lockRefresh: ${cluster.lockRefresh}
  healthCheck: 1s
  assignmentRefresh: 500ms
http: { address: "127.0.0.1:0" }
log: { format: json }
shutdownTimeout: 5s
sinks:
  rec: { module: ${JSON.stringify(recordingSink)}, path: ${JSON.stringify(log)}, delayMs: 20, maxEvents: ${cluster.maxEvents}, sources: [${cluster.recSources.join(", ")}] }
  audit: { type: audit-log, path: ${JSON.stringify(audit)} }
`
  )
  const idsOf = (name: string) =>
    cluster.standIns[cluster.names.indexOf(name)]!.events().map((e) => e.id)
  /** Every id of every source in the audit log, and every id of `recSources` recorded. */
  const delivered = () => {
    const got = new Set(recorded(log))
    const kept = audited(audit)
    return (
      cluster.names.every((n) => idsOf(n).every((id) => kept.has(id))) &&
      cluster.recSources.every((n) => idsOf(n).every((id) => got.has(id)))
    )
  }
  return { config, log, audit, idsOf, delivered }
}
