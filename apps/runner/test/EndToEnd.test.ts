/**
 * The whole product under faults: the runner as a child process (`src/bin.ts`) with a
 * real config file, reading the WorkOS stand-in and delivering to the Slack and
 * EventBridge stand-ins and the audit log (SQLite, and Postgres in the steady state),
 * all on 127.0.0.1. Each test checks exact ids, counts and order per sink.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Chain } from "@workos-relay/sink-audit-log"
import { EventBridgeStandIn, Ports, SlackStandIn, WorkOSStandIn } from "@workos-relay/testing"
import * as Postgres from "@workos-relay/testing/Postgres"
import { recorded, recordingSink, tempDir, waitUntilAsync } from "./helpers.ts"

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")

// Batch sizes the config sets, so "at most one batch repeated per crash" has a number.
const SLACK_BATCH = 20
const EVENTBRIDGE_BATCH = 50
const AUDIT_BATCH = 200

interface Proc {
  readonly child: ChildProcess
  stdout: string
  stderr: string
  readonly exited: Promise<number | null>
}

const start = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Proc => {
  const child = spawn(process.execPath, ["--conditions=@workos-relay/source", bin, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const proc: Proc = {
    child,
    stdout: "",
    stderr: "",
    exited: new Promise((resolve) => child.on("exit", (code) => resolve(code)))
  }
  child.stdout!.on("data", (d) => {
    proc.stdout += d
  })
  child.stderr!.on("data", (d) => {
    proc.stderr += d
  })
  running.add(proc)
  void proc.exited.then(() => running.delete(proc))
  return proc
}

const running = new Set<Proc>()
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const proc of running) proc.child.kill("SIGKILL")
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const runToEnd = async (args: ReadonlyArray<string>) => {
  const proc = start(args)
  const code = await proc.exited
  return { code, stdout: proc.stdout, stderr: proc.stderr }
}

const stop = async (proc: Proc) => {
  proc.child.kill("SIGTERM")
  expect(await proc.exited, proc.stderr.slice(-2000)).toBe(0)
}

interface World {
  readonly dir: string
  readonly workos: WorkOSStandIn.StandIn
  readonly slack: SlackStandIn.SlackStandIn
  readonly eventBridge: EventBridgeStandIn.StandIn
  readonly config: string
  readonly auditDb: string
}

interface Setup {
  readonly events?: number
  /** Extra keys of the Slack sink, as YAML lines indented by four spaces. */
  readonly slackExtra?: string
  /** Extra sinks, as YAML indented by two spaces. */
  readonly moreSinks?: string
  readonly slackChannels?: ReadonlyArray<SlackStandIn.Channel>
}

const CHANNELS: ReadonlyArray<SlackStandIn.Channel> = [
  { id: "C0GENERAL", name: "general" },
  { id: "C0DIRECTORY", name: "directory" },
  { id: "C0SIGNINS", name: "sign-ins" }
]

/** The stand-ins, and a config that points every sink at them. */
const world = async (setup: Setup = {}): Promise<World> => {
  const dir = tempDir("relay-e2e-")
  const workos = await WorkOSStandIn.start({ events: setup.events ?? 0 })
  // No rate limit in the Slack stand-in (its default), and `pacing: off` in the sink:
  // the tests measure delivery, not Slack's one message a second per channel.
  const slack = await SlackStandIn.start({ channels: setup.slackChannels ?? CHANNELS })
  const eventBridge = await EventBridgeStandIn.start()
  cleanups.push(
    () => workos.close(),
    () => slack.close(),
    () => eventBridge.close()
  )
  const auditDb = Path.join(dir, "audit.db")
  const config = Path.join(dir, "relay.yaml")
  Fs.writeFileSync(
    config,
    `source:
  type: workos
  apiKey: ${workos.apiKey}
  baseUrl: ${workos.url}
  start: earliest
  pollInterval: 50ms
state:
  sqlite: ./state.db
  leaseTtl: 1s
log: { format: json }
shutdownTimeout: 5s
sinks:
  slack:
    type: slack
    token: ${slack.token}
    slackApiUrl: ${slack.url}
    channel: "#general"
    routes:
      - events: ["dsync.*"]
        channel: "#directory"
      - events: ["authentication.*", "session.*"]
        channel: "#sign-ins"
    pacing: "off"
    batch: { maxEvents: ${SLACK_BATCH} }
    retry: { initialDelay: 100ms, maxDelay: 1s }
${setup.slackExtra ?? ""}
  eventbridge:
    type: eventbridge
    eventBus: workos-events
    region: us-east-1
    endpoint: ${eventBridge.url}
    credentials: { accessKeyId: AKIDE2E, secretAccessKey: e2e-secret }
    batch: { maxEvents: ${EVENTBRIDGE_BATCH} }
    retry: { initialDelay: 100ms, maxDelay: 1s }
  audit:
    type: audit-log
    path: ${JSON.stringify(auditDb)}
    batch: { maxEvents: ${AUDIT_BATCH} }
    retry: { initialDelay: 100ms, maxDelay: 1s }
${setup.moreSinks ?? ""}`
  )
  return { dir, workos, slack, eventBridge, config, auditDb }
}

// What each sink got, as event ids in the order they arrived.

const EVENT_ID = /event_[0-9A-Z]{26}/

// The stand-ins run in this process: the ids are read once per message, or polling every
// 25 ms would take the CPU the stand-ins need.
const idOfMessage = new WeakMap<SlackStandIn.RecordedMessage, string>()
const idOfEntry = new WeakMap<EventBridgeStandIn.StoredEvent, string>()

/** The event id a Slack message names (its context line), in arrival order per channel. */
const slackIds = (slack: SlackStandIn.SlackStandIn, channel?: string): Array<string> =>
  slack
    .messages()
    .filter((m) => channel === undefined || m.channelName === channel)
    .map((m) => {
      let id = idOfMessage.get(m)
      if (id === undefined) {
        id = EVENT_ID.exec(JSON.stringify(m.blocks))?.[0] ?? "(no event id)"
        idOfMessage.set(m, id)
      }
      return id
    })

const eventBridgeIds = (eventBridge: EventBridgeStandIn.StandIn): Array<string> =>
  eventBridge.events.map((e) => {
    let id = idOfEntry.get(e)
    if (id === undefined) {
      id = (JSON.parse(e.detail) as { id: string }).id
      idOfEntry.set(e, id)
    }
    return id
  })

/** The audit log's records, in chain order (`seq`). */
const auditRows = (
  database: string
): Array<{ id: string; event: string; schema_mismatch: string | null }> => {
  if (!Fs.existsSync(database)) return []
  const db = new DatabaseSync(database, { readOnly: true })
  try {
    return db
      .prepare("SELECT id, event, schema_mismatch FROM audit_records ORDER BY seq")
      .all() as Array<{ id: string; event: string; schema_mismatch: string | null }>
  } catch {
    return [] // the sink has not created its tables yet
  } finally {
    db.close()
  }
}
const auditCount = (database: string): number => {
  if (!Fs.existsSync(database)) return 0
  const db = new DatabaseSync(database, { readOnly: true })
  try {
    return (db.prepare("SELECT count(*) AS n FROM audit_records").get() as { n: number }).n
  } catch {
    return 0
  } finally {
    db.close()
  }
}

/** Each channel's messages are in event order, and together they are every event once. */
const expectSlackExactlyInOrder = (
  slack: SlackStandIn.SlackStandIn,
  all: ReadonlyArray<string>
) => {
  const position = new Map(all.map((id, i) => [id, i]))
  for (const channel of CHANNELS) {
    const positions = slackIds(slack, channel.name).map((id) => position.get(id) ?? -1)
    expect(positions.every((p, i) => p >= 0 && (i === 0 || p > positions[i - 1]!))).toBe(true)
  }
  expect(slackIds(slack).sort()).toEqual([...all].sort())
}

/** Every event, each at least once, in event order by first arrival. */
const firstSeen = (ids: ReadonlyArray<string>) => [...new Set(ids)]

const idsOf = (workos: WorkOSStandIn.StandIn) => workos.events().map((e) => e.id)

const everySinkHas = (w: World, n: number) => () =>
  w.slack.messages().length >= n &&
  w.eventBridge.events.length >= n &&
  new Set(slackIds(w.slack)).size >= n &&
  new Set(eventBridgeIds(w.eventBridge)).size >= n &&
  auditCount(w.auditDb) >= n

/** `sink event_id` for each row of `dead-letters list`. */
const deadLetterRows = (list: string): Array<string> =>
  list
    .split("\n")
    .map((line) => /^\d+\s+(\S+)\s+(event_\S+)/.exec(line))
    .filter((m) => m !== null)
    .map((m) => `${m[1]} ${m[2]}`)

const deadLetters = async (config: string) => {
  const list = await runToEnd(["dead-letters", "list", "-c", config, "--limit", "1000"])
  expect(list.code, list.stderr).toBe(0)
  return list.stdout
}

describe("end to end: the runner process against the stand-ins", { timeout: 180_000 }, () => {
  it("steady state: every event reaches Slack, EventBridge and the audit log (SQLite and Postgres)", async () => {
    // 10k events, as the issue asks.
    const N = 10_000
    const pg = await Postgres.start()
    cleanups.push(() => pg.stop())
    const w = await world({
      events: N,
      moreSinks: `  audit-pg:
    type: audit-log
    store: postgres
    url: ${JSON.stringify(pg.url)}
    batch: { maxEvents: 500 }
`
    })
    const all = idsOf(w.workos)
    const relay = start(["run", "-c", w.config])
    await waitUntilAsync("every event in every sink", everySinkHas(w, N), 150_000)
    await stop(relay)

    expectSlackExactlyInOrder(w.slack, all)
    expect(eventBridgeIds(w.eventBridge)).toEqual(all)
    expect(auditRows(w.auditDb).map((r) => r.id)).toEqual(all)
    const queried = await runToEnd([
      "audit",
      "query",
      "--postgres",
      pg.url,
      "--limit",
      String(N + 10),
      "--format",
      "json"
    ])
    expect(queried.code, queried.stderr).toBe(0)
    const pgIds = (JSON.parse(queried.stdout) as Array<{ id: string }>).map((r) => r.id)
    expect(pgIds.length).toBe(N)
    expect(pgIds.reverse()).toEqual(all) // newest first
    expect(await deadLetters(w.config)).toContain("no dead letters")
  })

  it("kill -9 at five random moments: the audit log has every event once, Slack and EventBridge at least once", async () => {
    const N = 2_000
    const w = await world({ events: N })
    const all = idsOf(w.workos)
    const crashes = 5
    // Each crash comes at a random moment once the new runner has delivered something more.
    for (let crash = 0; crash < crashes; crash++) {
      const before = auditCount(w.auditDb) + slackIds(w.slack).length
      const relay = start(["run", "-c", w.config])
      await waitUntilAsync(
        "the runner makes progress",
        () => auditCount(w.auditDb) + slackIds(w.slack).length > before,
        30_000
      )
      await new Promise((r) => setTimeout(r, Math.random() * 400))
      relay.child.kill("SIGKILL")
      await relay.exited
    }
    expect(new Set(slackIds(w.slack)).size).toBeLessThan(N) // the crashes came mid-run
    const last = start(["run", "-c", w.config])
    await waitUntilAsync("every event in every sink", everySinkHas(w, N), 60_000)
    await stop(last)

    // Exactly once, in event order, in the audit log.
    expect(auditRows(w.auditDb).map((r) => r.id)).toEqual(all)
    // At least once, in order of first arrival, with at most one batch again per crash.
    const slack = slackIds(w.slack)
    const eventBridge = eventBridgeIds(w.eventBridge)
    expect(new Set(slack).size).toBe(N)
    expect(slack.length - N).toBeLessThanOrEqual(crashes * SLACK_BATCH)
    expect(firstSeen(eventBridge)).toEqual(all)
    expect(eventBridge.length - N).toBeLessThanOrEqual(crashes * EVENTBRIDGE_BATCH)
    const position = new Map(all.map((id, i) => [id, i]))
    for (const channel of CHANNELS) {
      const positions = firstSeen(slackIds(w.slack, channel.name)).map((id) => position.get(id)!)
      expect(positions).toEqual([...positions].sort((a, b) => a - b))
    }
    expect(await deadLetters(w.config)).toContain("no dead letters")
  })

  it("Slack answers 503 until the others are done: EventBridge and the audit log go on; Slack catches up in order", async () => {
    // The outage lasts until the other sinks have every event (however long a cold start
    // takes on this machine), then ends: the Slack lane retried with backoff meanwhile.
    const N = 600
    const w = await world({ events: N })
    const all = idsOf(w.workos)
    w.slack.faultFor(3_600_000, { status: 503 })
    const relay = start(["run", "-c", w.config])
    await waitUntilAsync(
      "EventBridge and the audit log have every event",
      () => eventBridgeIds(w.eventBridge).length >= N && auditCount(w.auditDb) >= N,
      60_000
    )
    // ... while Slack has failed every call and has not taken a single message.
    expect(w.slack.messages().length).toBe(0)
    const posts = w.slack.calls().filter((c) => c.method === "chat.postMessage")
    expect(posts.length).toBeGreaterThan(0)
    expect(posts.every((c) => c.answer === "http 503")).toBe(true)
    w.slack.clear() // the outage ends
    await waitUntilAsync("Slack catches up", () => slackIds(w.slack).length >= N, 60_000)
    await stop(relay)
    expectSlackExactlyInOrder(w.slack, all)
    expect(eventBridgeIds(w.eventBridge)).toEqual(all)
    expect(auditRows(w.auditDb).map((r) => r.id)).toEqual(all)
    expect(await deadLetters(w.config)).toContain("no dead letters")
  })

  it("poison events are dead-lettered while the rest flows; dead-letters retry delivers them once fixed", async () => {
    // (A payload that breaks its schema is no poison for these sinks: they are raw, and
    // take it as WorkOS sent it; see "spec drift" below.)
    const w = await world({ events: 300 })
    // Route dsync.group.* first, to a channel that does not exist yet.
    Fs.writeFileSync(
      w.config,
      Fs.readFileSync(w.config, "utf8").replace(
        "    routes:\n",
        '    routes:\n      - events: ["dsync.group.*"]\n        channel: "#groups"\n'
      )
    )
    const [broken] = w.workos.append([WorkOSStandIn.brokenEvent("dsync.user.created")])
    const [huge] = w.workos.append([
      {
        event: "dsync.user.updated",
        data: {
          ...(w.workos.events().find((e) => e.event === "dsync.user.updated")!.data as object),
          custom_attributes: { notes: "x".repeat(1_100_000) }
        }
      }
    ])
    w.workos.appendGenerated(100)
    const all = idsOf(w.workos)
    const groups = w.workos
      .events()
      .filter((e) => e.event.startsWith("dsync.group."))
      .map((e) => e.id)
    expect(groups.length).toBeGreaterThan(0)
    const N = all.length

    const relay = start(["run", "-c", w.config])
    // The rest flows: everything but the poison reaches each sink.
    await waitUntilAsync(
      "everything else delivered",
      () =>
        auditCount(w.auditDb) >= N &&
        eventBridgeIds(w.eventBridge).length >= N - 1 &&
        slackIds(w.slack).length >= N - groups.length,
      60_000
    )
    await stop(relay)
    expect(eventBridgeIds(w.eventBridge)).toEqual(all.filter((id) => id !== huge!.id))
    // Dead-lettered: the event over 1 MiB for EventBridge (AWS's limit for one entry),
    // the groups for Slack. The broken payload reached every sink, as WorkOS sent it.
    const expected = [`eventbridge ${huge!.id}`, ...groups.map((id) => `slack ${id}`)].sort()
    expect(deadLetterRows(await deadLetters(w.config)).sort()).toEqual(expected)
    expect(slackIds(w.slack).sort()).toEqual(all.filter((id) => !groups.includes(id)).sort())
    expect(auditRows(w.auditDb).map((r) => r.id)).toEqual(all)
    const asSent = w.workos.events().find((e) => e.id === broken!.id)
    const audited = auditRows(w.auditDb).find((r) => r.id === broken!.id)!
    expect(JSON.parse(audited.event)).toEqual(asSent)
    expect(audited.schema_mismatch).toBe("data.object: required field is missing")

    // The cause fixed: the channel exists now. An entry over 1 MiB stays over it: that
    // dead letter stays.
    w.slack.addChannel({ id: "C0GROUPS", name: "groups" })
    const retried = await runToEnd(["dead-letters", "retry", "-c", w.config])
    expect(retried.stdout).toContain(
      `retried: ${expected.length - 1} delivered and removed, 1 still dead-lettered`
    )
    expect(retried.code).toBe(1)
    expect(deadLetterRows(await deadLetters(w.config))).toEqual([`eventbridge ${huge!.id}`])
    expect(slackIds(w.slack, "groups")).toEqual(groups)
    expect(slackIds(w.slack).filter((id) => id === broken!.id)).toHaveLength(1)
    expect(eventBridgeIds(w.eventBridge).filter((id) => id === broken!.id)).toHaveLength(1)
  })

  it("WorkOS answers 429 and 500 for a while: nothing is lost", async () => {
    const w = await world({ events: 300 })
    w.workos.faults.next(
      { status: 429, retryAfter: 1 },
      { status: 500 },
      { status: 500 },
      { status: 429, retryAfter: "1" },
      { status: 500 }
    )
    const relay = start(["run", "-c", w.config])
    await waitUntilAsync("the first 300", everySinkHas(w, 300), 60_000)
    // More events, and more faults while the runner polls for them.
    w.workos.faults.next({ status: 500 }, { status: 429, retryAfter: 1 }, { status: 500 })
    w.workos.appendGenerated(300)
    const all = idsOf(w.workos)
    await waitUntilAsync("all 600", everySinkHas(w, 600), 60_000)
    await stop(relay)
    expect(w.workos.faults.pending()).toBe(0)
    expectSlackExactlyInOrder(w.slack, all)
    expect(eventBridgeIds(w.eventBridge)).toEqual(all)
    expect(auditRows(w.auditDb).map((r) => r.id)).toEqual(all)
    expect(await deadLetters(w.config)).toContain("no dead letters")
  })

  it("an event of a type the spec does not know reaches EventBridge and the audit log unchanged, and Slack as a generic message", async () => {
    const w = await world({ events: 20 })
    const [unknown] = w.workos.append([WorkOSStandIn.unknownTypeEvent("widget.assembled")])
    const all = idsOf(w.workos)
    const relay = start(["run", "-c", w.config])
    await waitUntilAsync("every event in every sink", everySinkHas(w, all.length), 60_000)
    await stop(relay)
    const asSent = w.workos.events().find((e) => e.id === unknown!.id)!
    const onBus = w.eventBridge.events.find((e) => e.detailType === "widget.assembled")!
    expect(JSON.parse(onBus.detail)).toEqual(asSent)
    const audited = auditRows(w.auditDb).find((r) => r.id === unknown!.id)!
    expect(JSON.parse(audited.event)).toEqual(asSent)
    const message = w.slack.messages().find((m) => JSON.stringify(m.blocks).includes(unknown!.id))!
    expect(message.channelName).toBe("general")
    expect(message.text).toContain("`widget.assembled`, a type this relay does not know yet")
    expect(JSON.stringify(message.blocks)).toContain("New event type: widget.assembled")
    expect(await deadLetters(w.config)).toContain("no dead letters")
  })
  it("spec drift: events that break the spec reach EventBridge, the audit log and Slack as WorkOS sent them, marked; a typed sink dead-letters them with the path; counted by type", async () => {
    const port = await Ports.freePort()
    const typedLog = Path.join(tempDir("relay-e2e-typed-"), "typed.log")
    const w = await world({
      events: 80,
      moreSinks: `  typed:
    module: ${JSON.stringify(recordingSink)}
    path: ${JSON.stringify(typedLog)}
    retry: { initialDelay: 100ms, maxDelay: 1s }
`
    })
    Fs.appendFileSync(w.config, `http:\n  address: 127.0.0.1:${port}\n`)
    // Drifted payloads among normal ones: every drift case once, then some more.
    const drifted = [...w.workos.appendDrifted()]
    w.workos.appendGenerated(40)
    drifted.push(...w.workos.appendDrifted(7))
    w.workos.appendGenerated(30)
    const all = idsOf(w.workos)
    const N = all.length
    const driftIds = new Set(drifted.map((e) => e.id))
    expect(driftIds.size).toBe(WorkOSStandIn.driftCases.length + 7)
    // As the stand-in serves each: its JSON text.
    const served = new Map(w.workos.events().map((e) => [e.id, JSON.stringify(e)]))

    const relay = start(["run", "-c", w.config])
    await waitUntilAsync(
      "every event in every sink",
      () => everySinkHas(w, N)() && recorded(typedLog).length >= N - driftIds.size,
      60_000
    )
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
    await stop(relay)

    // EventBridge: every event once, in order, each drifted one byte for byte as served.
    expect(eventBridgeIds(w.eventBridge)).toEqual(all)
    for (const entry of w.eventBridge.events) {
      const id = (JSON.parse(entry.detail) as { id: string }).id
      if (driftIds.has(id)) expect(entry.detail).toBe(served.get(id))
    }
    // The audit log: every event once, the drifted ones whole (the canonical JSON of
    // what was served, byte for byte) and marked; the others unmarked.
    const rows = auditRows(w.auditDb)
    expect(rows.map((r) => r.id)).toEqual(all)
    for (const row of rows) {
      if (!driftIds.has(row.id)) {
        expect(row.schema_mismatch).toBeNull()
        continue
      }
      expect(row.event).toBe(Chain.canonicalJson(JSON.parse(served.get(row.id)!)))
      expect(row.schema_mismatch).toMatch(/^data\.\S+: ./)
    }
    // ... and `audit query --mismatched` selects them, newest first, as sent.
    const queried = await runToEnd([
      "audit",
      "query",
      "--sqlite",
      w.auditDb,
      "--mismatched",
      "--limit",
      "1000",
      "--format",
      "json"
    ])
    expect(queried.code, queried.stderr).toBe(0)
    const mismatched = JSON.parse(queried.stdout) as Array<{
      id: string
      event: unknown
      schema_mismatch: string
    }>
    expect(mismatched.map((r) => r.id)).toEqual(drifted.map((e) => e.id).reverse())
    for (const record of mismatched)
      expect(record.event).toEqual(JSON.parse(served.get(record.id)!))
    const verified = await runToEnd(["audit", "verify", "--sqlite", w.auditDb])
    expect(verified.code, verified.stderr).toBe(0)
    // Slack: the generic message for each drifted event, saying where.
    expectSlackExactlyInOrder(w.slack, all)
    for (const message of w.slack.messages()) {
      const id = EVENT_ID.exec(JSON.stringify(message.blocks))![0]
      expect((message.text ?? "").includes("with a payload that does not match the spec"), id).toBe(
        driftIds.has(id)
      )
    }
    // The typed sink: everything else, in order; the drifted ones dead-lettered with the path.
    expect(recorded(typedLog)).toEqual(all.filter((id) => !driftIds.has(id)))
    const letters = await deadLetters(w.config)
    expect(deadLetterRows(letters).sort()).toEqual([...driftIds].map((id) => `typed ${id}`).sort())
    expect(letters).toContain("does not match its schema at data.")
    // The sink made raw, `dead-letters retry` hands it those events marked, as a run does.
    const rawLog = Path.join(Path.dirname(typedLog), "raw.log")
    Fs.writeFileSync(
      w.config,
      Fs.readFileSync(w.config, "utf8")
        .replace(recordingSink, Path.join(Path.dirname(recordingSink), "raw-recording-sink.mjs"))
        .replace(`path: ${JSON.stringify(typedLog)}`, `path: ${JSON.stringify(rawLog)}`)
    )
    const retried = await runToEnd(["dead-letters", "retry", "-c", w.config, "--sink", "typed"])
    expect(retried.stdout, retried.stderr).toContain(
      `retried: ${driftIds.size} delivered and removed, 0 still dead-lettered`
    )
    const marked = recorded(rawLog).map((line) => line.split(" "))
    expect(marked.map(([id]) => id).sort()).toEqual([...driftIds].sort())
    expect(marked.every(([, path]) => path!.startsWith("data."))).toBe(true)
    // Counted by type, each event once though four sinks took it; told once per type.
    const byType = new Map<string, number>()
    for (const e of drifted) byType.set(e.event, (byType.get(e.event) ?? 0) + 1)
    const counted = metrics
      .split("\n")
      .filter((line) => line.startsWith("workos_relay_spec_mismatches_total{"))
      .sort()
    expect(counted).toEqual(
      [...byType]
        .map(([type, n]) => `workos_relay_spec_mismatches_total{type="${type}"} ${n}`)
        .sort()
    )
    const warnings = relay.stderr
      .split("\n")
      .filter((line) => line.includes("does not match the spec at"))
      .map((line) => /event type (\S+) does not match/.exec(line)?.[1])
    expect(warnings.sort()).toEqual([...byType.keys()].sort())
  })
})
