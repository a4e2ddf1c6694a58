/**
 * Several sources in one config, as users run it (a child process of `src/bin.ts`):
 * two WorkOS stand-ins with different keys and different events; each sink gets
 * exactly the events of the sources it names, in order per source; kill -9 and a
 * restart resume each (sink, source) from its own checkpoint; and a state database of
 * before (one checkpoint per sink) resumes where it was.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as StateStore from "../src/StateStore.ts"
import { onceAroundTakeover, recorded, recordingSink, tempDir, waitUntilAsync } from "./helpers.ts"

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")

interface Proc {
  readonly child: ChildProcess
  stderr: string
  stdout: string
  readonly exited: Promise<number | null>
}

let prod: WorkOSStandIn.StandIn
let staging: WorkOSStandIn.StandIn
beforeAll(async () => {
  ;[prod, staging] = await Promise.all([
    WorkOSStandIn.start({ apiKey: "sk_test_prod", events: 300, seed: 11 }),
    WorkOSStandIn.start({ apiKey: "sk_test_staging", events: 200, seed: 22 })
  ])
})
afterAll(async () => {
  await Promise.all([prod?.close(), staging?.close()])
})

const start = (args: ReadonlyArray<string>): Proc => {
  const child = spawn(process.execPath, ["--conditions=@workos-relay/source", bin, ...args], {
    // Each source its own key; no WORKOS_API_KEY to fall back on.
    env: {
      ...process.env,
      WORKOS_API_KEY: "",
      PROD_KEY: prod.apiKey,
      STAGING_KEY: staging.apiKey
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const proc: Proc = {
    child,
    stderr: "",
    stdout: "",
    exited: new Promise((resolve) => child.on("exit", (code) => resolve(code)))
  }
  child.stdout!.on("data", (d) => {
    proc.stdout += d
  })
  child.stderr!.on("data", (d) => {
    proc.stderr += d
  })
  return proc
}

const runToEnd = async (args: ReadonlyArray<string>) => {
  const proc = start(args)
  await proc.exited
  return proc
}

const stop = async (proc: Proc) => {
  proc.child.kill("SIGTERM")
  expect(await proc.exited).toBe(0)
}

const workos = (standIn: WorkOSStandIn.StandIn, key: string) =>
  `{ type: workos, apiKey: "\${${key}}", baseUrl: "${standIn.url}", start: earliest, pollInterval: 50ms }`

const sink = (dir: string, name: string, extra = "") =>
  `  ${name}:
    module: ${JSON.stringify(recordingSink)}
    path: ${JSON.stringify(Path.join(dir, `${name}.log`))}
    delayMs: 10
    maxEvents: 10
${extra}`

/** The type `picky` rejects: its events of staging are dead letters. */
const pickyType = "dsync.user.created"

/** Two sources; `both` takes each, `prodOnly` and `stagingOnly` one, `picky` staging. */
const writeConfig = (dir: string) => {
  const file = Path.join(dir, "relay.yaml")
  Fs.writeFileSync(
    file,
    `sources:
  prod: ${workos(prod, "PROD_KEY")}
  staging: ${workos(staging, "STAGING_KEY")}
state: { sqlite: ./state.db, leaseTtl: 1s }
log: { format: json }
http: { address: "127.0.0.1:0" }
shutdownTimeout: 2s
sinks:
${sink(dir, "both")}${sink(dir, "prodOnly", "    sources: [prod]\n")}${sink(dir, "stagingOnly", "    sources: [staging]\n")}${sink(dir, "picky", `    sources: [staging]\n    failTypes: [${pickyType}]\n    reject: true\n`)}`
  )
  return file
}

const idsOf = (standIn: WorkOSStandIn.StandIn) => standIn.events().map((e) => e.id)

/** The ids of `got` that are in `ids`, as delivered (repeats kept). */
const only = (got: ReadonlyArray<string>, ids: ReadonlyArray<string>) => {
  const set = new Set(ids)
  return got.filter((id) => set.has(id))
}

const checkpoints = (dir: string) =>
  new DatabaseSync(Path.join(dir, "state.db"))
    .prepare("SELECT sink, source, cursor FROM relay_checkpoints ORDER BY sink, source")
    .all()
    .map((r) => `${r.sink}/${r.source}: ${r.cursor}`)

describe("several sources", { timeout: 120_000 }, () => {
  it("each sink gets exactly its sources' events, in order per source; kill -9 resumes each (sink, source)", async () => {
    const dir = tempDir("relay-sources-")
    const config = writeConfig(dir)
    const prodIds = idsOf(prod)
    const stagingIds = idsOf(staging)
    const log = (name: string) => recorded(Path.join(dir, `${name}.log`))
    // The stand-ins' events are different events.
    expect(only(prodIds, stagingIds)).toEqual([])

    const first = start(["run", "-c", config])
    await waitUntilAsync(
      "some events of both sources delivered to both",
      () => only(log("both"), prodIds).length >= 60 && only(log("both"), stagingIds).length >= 40
    )
    first.child.kill("SIGKILL")
    await first.exited
    expect(only(log("both"), prodIds).length).toBeLessThan(prodIds.length)

    const second = start(["run", "-c", config])
    const done = () =>
      new Set(log("both")).size === prodIds.length + stagingIds.length &&
      new Set(log("prodOnly")).size === prodIds.length &&
      new Set(log("stagingOnly")).size === stagingIds.length &&
      checkpoints(dir).includes(`picky/staging: ${stagingIds.at(-1)}`)
    await waitUntilAsync("every event delivered to every sink", done, 60_000)
    await stop(second)

    // Nothing of a source a sink does not name; nothing that is no source's.
    expect(log("prodOnly").length).toBe(only(log("prodOnly"), prodIds).length)
    expect(log("stagingOnly").length).toBe(only(log("stagingOnly"), stagingIds).length)
    expect(log("both").length).toBe(
      only(log("both"), prodIds).length + only(log("both"), stagingIds).length
    )
    // Per (sink, source): each id once in order, but for at most one batch delivered
    // again after the kill (its checkpoint was not moved past it).
    for (const [name, ids] of [
      ["both", prodIds],
      ["both", stagingIds],
      ["prodOnly", prodIds],
      ["stagingOnly", stagingIds]
    ] as const)
      expect(onceAroundTakeover(only(log(name), ids), ids, 10), `${name}`).toBeUndefined()

    // A checkpoint per (sink, source), each at its source's last event.
    expect(checkpoints(dir)).toEqual([
      `both/prod: ${prodIds.at(-1)}`,
      `both/staging: ${stagingIds.at(-1)}`,
      `picky/staging: ${stagingIds.at(-1)}`,
      `prodOnly/prod: ${prodIds.at(-1)}`,
      `stagingOnly/staging: ${stagingIds.at(-1)}`
    ])

    // picky's dead letters say their source; dead-letters list shows it.
    const rejected = staging
      .events()
      .filter((e) => e.event === pickyType)
      .map((e) => e.id)
    expect(rejected.length).toBeGreaterThan(0)
    const letters = new DatabaseSync(Path.join(dir, "state.db"))
      .prepare("SELECT sink, source, event_id FROM relay_dead_letters ORDER BY id")
      .all()
    expect(new Set(letters.map((l) => `${l.sink}/${l.source}`))).toEqual(new Set(["picky/staging"]))
    // Each rejected event a dead letter; one batch may be dead-lettered again after the kill.
    expect([...new Set(letters.map((l) => String(l.event_id)))].sort()).toEqual(
      [...rejected].sort()
    )
    expect(letters.length).toBeLessThanOrEqual(rejected.length + 10)
    const list = await runToEnd(["dead-letters", "list", "-c", config, "--limit", "1"])
    expect(list.stdout).toMatch(/^id\s+sink\s+source\s+event\s/m)
    expect(list.stdout).toMatch(new RegExp(`^\\d+\\s+picky\\s+staging\\s+${rejected[0]}`, "m"))

    // validate reaches each source with its own key.
    const validate = await runToEnd(["validate", "-c", config, "--check-connections"])
    expect(validate.stdout).toMatch(/^ {2}ok {4}WorkOS \(source prod\)$/m)
    expect(validate.stdout).toMatch(/^ {2}ok {4}WorkOS \(source staging\)$/m)

    // status: each source (position, lag) and a row per (sink, source).
    const status = await runToEnd(["status", "-c", config])
    expect(status.stdout).toMatch(
      new RegExp(`^prod\\s+workos \\S+\\s+2\\s+${prodIds.at(-1)}\\s+0\\s+0s$`, "m")
    )
    expect(status.stdout).toMatch(
      new RegExp(`^staging\\s+workos \\S+\\s+3\\s+${stagingIds.at(-1)}\\s+0\\s+0s$`, "m")
    )
    expect(status.stdout).toMatch(new RegExp(`^both\\s+staging\\s+${stagingIds.at(-1)}\\s`, "m"))
    expect(status.stdout).toMatch(
      new RegExp(
        `^picky\\s+staging\\s+${stagingIds.at(-1)}\\s+\\S+\\s+0\\s+0s\\s+${letters.length}$`,
        "m"
      )
    )

    // New events of one source reach only the sinks that take it; /metrics labels lanes by source.
    const before = { both: log("both").length, prodOnly: log("prodOnly").length }
    const third = start(["run", "-c", config])
    const added = staging.appendGenerated(5).map((e) => e.id)
    await waitUntilAsync(
      "the new staging events delivered",
      () => only(log("stagingOnly"), added).length === 5 && only(log("both"), added).length === 5
    )
    const port = /health and metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(third.stderr)?.[1]
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
    await stop(third)
    expect(log("prodOnly").length).toBe(before.prodOnly)
    expect(log("both").slice(before.both)).toEqual(added)
    expect(metrics).toContain(
      'workos_relay_events_delivered_total{sink="both",source="staging"} 5\n'
    )
    expect(metrics).toContain('workos_relay_events_delivered_total{sink="both",source="prod"} 0\n')
    expect(metrics).toContain(
      'workos_relay_events_delivered_total{sink="prodOnly",source="prod"} 0\n'
    )
    expect(metrics).not.toContain('sink="prodOnly",source="staging"')
    expect(metrics).toMatch(/^workos_relay_events_fetched_total\{source="staging"\} \d+$/m)
    expect(metrics).toMatch(/^workos_relay_events_fetched_total\{source="prod"\} \d+$/m)
    expect(metrics).not.toMatch(/^workos_relay_events_fetched_total \d+$/m)

    // picky takes its events now: a retry delivers each dead letter to it, and drops them.
    Fs.writeFileSync(
      config,
      Fs.readFileSync(config, "utf8")
        .replace("    reject: true\n", "")
        .replace(`    failTypes: [${pickyType}]\n`, "")
    )
    const pickyBefore = log("picky").length
    const retry = await runToEnd(["dead-letters", "retry", "-c", config])
    expect(retry.stdout).toContain(
      `retried: ${letters.length} delivered and removed, 0 still dead-lettered`
    )
    expect([...log("picky").slice(pickyBefore)].sort()).toEqual(
      letters.map((l) => String(l.event_id)).sort()
    )
    const left = new DatabaseSync(Path.join(dir, "state.db"))
      .prepare("SELECT COUNT(*) AS n FROM relay_dead_letters")
      .get()
    expect(Number(left?.n)).toBe(0)

    // replay: each source in turn to the chosen sink; its checkpoints stay where they are.
    const cursors = checkpoints(dir)
    const bothBefore = log("both").length
    const replayed = await runToEnd([
      "replay",
      "-c",
      config,
      "--since",
      "30d",
      "--sink",
      "prodOnly,both"
    ])
    expect(replayed.stdout).toMatch(new RegExp(`^both@prod\\s+${prodIds.length}\\s+0\\s*$`, "m"))
    expect(replayed.stdout).toMatch(
      new RegExp(`^both@staging\\s+${stagingIds.length + 5}\\s+0\\s*$`, "m")
    )
    expect(replayed.stdout).toMatch(
      new RegExp(`^prodOnly@prod\\s+${prodIds.length}\\s+0\\s*$`, "m")
    )
    const again = log("both").slice(bothBefore)
    expect(only(again, prodIds)).toEqual(prodIds)
    expect(only(again, idsOf(staging))).toEqual(idsOf(staging))
    expect(again.length).toBe(prodIds.length + stagingIds.length + 5)
    expect(checkpoints(dir)).toEqual(cursors)
  })

  it("a state database of before (one checkpoint per sink) resumes where it was, then a second source joins", async () => {
    const dir = tempDir("relay-sources-old-")
    const prodIds = idsOf(prod)
    // The tables as the runner of before left them, with sink rec's checkpoint at event 199.
    const old = new DatabaseSync(Path.join(dir, "state.db"))
    for (const m of StateStore.migrations.filter((m) => m.version <= 3))
      for (const s of m.statements)
        old.exec(s.replace("__SERIAL__", "INTEGER PRIMARY KEY AUTOINCREMENT"))
    old.exec(
      "CREATE TABLE relay_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
    )
    old.exec("INSERT INTO relay_migrations (version, applied_at) VALUES (1, 1), (2, 2), (3, 3)")
    old
      .prepare(
        "INSERT INTO relay_checkpoints (sink, cursor, event_created_at, updated_at) VALUES ('rec', ?, NULL, 1)"
      )
      .run(prodIds[199]!)
    old.close()
    const recSink = `sinks:
  rec:
    module: ${JSON.stringify(recordingSink)}
    path: ${JSON.stringify(Path.join(dir, "rec.log"))}
`
    const common =
      "state: { sqlite: ./state.db, leaseTtl: 1s }\nlog: { format: json }\nshutdownTimeout: 2s\n"
    const file = Path.join(dir, "relay.yaml")
    Fs.writeFileSync(file, `source: ${workos(prod, "PROD_KEY")}\n${common}${recSink}`)
    const log = () => recorded(Path.join(dir, "rec.log"))

    const first = start(["run", "-c", file])
    await waitUntilAsync("the rest delivered", () => log().length >= prodIds.length - 200)
    await stop(first)
    // Exactly the events after the old checkpoint, once each, in order.
    expect(log()).toEqual(prodIds.slice(200))

    // The same sink, now fed by two sources: the one named default keeps its checkpoint.
    Fs.writeFileSync(
      file,
      `sources:\n  default: ${workos(prod, "PROD_KEY")}\n  staging: ${workos(staging, "STAGING_KEY")}\n${common}${recSink}`
    )
    const stagingIds = idsOf(staging)
    const second = start(["run", "-c", file])
    await waitUntilAsync(
      "staging's events delivered",
      () => only(log(), stagingIds).length >= stagingIds.length
    )
    await stop(second)
    expect(only(log(), prodIds)).toEqual(prodIds.slice(200))
    expect(only(log(), stagingIds)).toEqual(stagingIds)
    expect(checkpoints(dir)).toEqual([
      `rec/default: ${prodIds.at(-1)}`,
      `rec/staging: ${stagingIds.at(-1)}`
    ])
  })
})
