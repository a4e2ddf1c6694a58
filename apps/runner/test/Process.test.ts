/**
 * The runner as users run it: a child process of `src/bin.ts`, killed with SIGKILL
 * mid-run and restarted, two of them sharing a store, and the CLI's exit codes.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Ports, WorkOSStandIn } from "@workos-relay/testing"
import * as Effect from "effect/Effect"
import * as StateStore from "../src/StateStore.ts"
import {
  fixtures,
  onceAroundTakeover,
  recorded,
  recordingSink,
  tempDir,
  waitUntilAsync
} from "./helpers.ts"

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")

interface Proc {
  readonly child: ChildProcess
  stdout: string
  stderr: string
  readonly exited: Promise<number | null>
}

const start = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Proc => {
  const child = spawn(process.execPath, ["--conditions=@workos-relay/source", bin, ...args], {
    env: { ...process.env, TEST_KEY: standIn.apiKey, ...env },
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
  return proc
}

const runToEnd = async (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const proc = start(args, env)
  const code = await proc.exited
  return { code, stdout: proc.stdout, stderr: proc.stderr }
}

let standIn: WorkOSStandIn.StandIn
beforeAll(async () => {
  standIn = await WorkOSStandIn.start({ events: 400 })
})
afterAll(() => standIn.close())

const writeConfig = (dir: string, sinkOptions: Record<string, unknown>, extra = "") => {
  const file = Path.join(dir, "relay.yaml")
  const options = Object.entries(sinkOptions)
    .map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`)
    .join("\n")
  Fs.writeFileSync(
    file,
    `source:
  type: workos
  apiKey: \${TEST_KEY}
  baseUrl: ${standIn.url}
  start: earliest
  pollInterval: 50ms
state:
  sqlite: ./state.db
  leaseTtl: 1s
log: { format: json }
shutdownTimeout: 2s
${extra}sinks:
  rec:
    module: ${JSON.stringify(recordingSink)}
    path: ${JSON.stringify(Path.join(dir, "rec.log"))}
${options}
`
  )
  return file
}

/** Every event, each at least once, in event order (a redelivery after a crash may repeat some). */
const expectAllInOrder = (got: ReadonlyArray<string>, all: ReadonlyArray<string>) => {
  const firstSeen = [...new Set(got)]
  expect(firstSeen).toEqual(all)
}

describe("the runner process", { timeout: 90_000 }, () => {
  it("kill -9 mid-run, then restart: nothing is lost", async () => {
    const dir = tempDir()
    const config = writeConfig(dir, { delayMs: 15, maxEvents: 10 })
    const env = { TEST_KEY: standIn.apiKey }
    const all = standIn.events().map((e) => e.id)
    const log = Path.join(dir, "rec.log")
    const first = start(["run", "-c", config], env)
    await waitUntilAsync("some events delivered", () => recorded(log).length >= 100)
    first.child.kill("SIGKILL")
    await first.exited
    const before = recorded(log).length
    expect(before).toBeLessThan(all.length)
    const second = start(["run", "-c", config], env)
    await waitUntilAsync(
      "every event delivered",
      () => new Set(recorded(log)).size === all.length,
      40_000
    )
    second.child.kill("SIGTERM")
    expect(await second.exited).toBe(0)
    expectAllInOrder(recorded(log), all)
    expect(second.stderr).toContain("Summary after")
    // The second stopped cleanly: it gave the lease back.
    const status = await runToEnd(["status", "-c", config], env)
    expect(status.stdout).toMatch(/^lease: free \(released by \S+ as it stopped\)$/m)
  })

  it("--log-level on the command line wins over the config file's log level", async () => {
    const dir = tempDir()
    const config = writeConfig(dir, {}) // log level: info, the default
    const quiet = start(["run", "-c", config, "--log-level", "error"])
    await waitUntilAsync(
      "every event delivered",
      () => recorded(Path.join(dir, "rec.log")).length === standIn.events().length
    )
    quiet.child.kill("SIGTERM")
    expect(await quiet.exited).toBe(0)
    // What the config's info level prints as the run starts.
    expect(quiet.stderr).not.toContain("relaying to 1 sink(s)")
  })

  it("a second runner waits as a hot standby and takes over when the first dies", async () => {
    // A stand-in of its own: events are added while b stands by, so that a is still
    // delivering then (a standby that did not wait would deliver them too).
    const own = await WorkOSStandIn.start({ events: 200 })
    try {
      const dir = tempDir()
      const config = writeConfig(dir, { delayMs: 15, maxEvents: 10 })
      Fs.writeFileSync(config, Fs.readFileSync(config, "utf8").replace(standIn.url, own.url))
      const env = { TEST_KEY: own.apiKey }
      const log = Path.join(dir, "rec.log")
      const a = start(["run", "-c", config], env)
      await waitUntilAsync("a delivers what there is", () => recorded(log).length === 200)
      const b = start(["run", "-c", config], env)
      await waitUntilAsync("b waits as a standby", () => b.stderr.includes("hot standby"))
      own.appendGenerated(300)
      const all = own.events().map((e) => e.id)
      await waitUntilAsync("a delivers while b stands by", () => recorded(log).length >= 260)
      a.child.kill("SIGKILL")
      await a.exited
      await waitUntilAsync("b takes over", () => b.stderr.includes("took over the lease"), 30_000)
      await waitUntilAsync(
        "every event delivered",
        () => new Set(recorded(log)).size === all.length,
        40_000
      )
      b.child.kill("SIGTERM")
      expect(await b.exited).toBe(0)
      // Counted per id: once each, but the one batch a takes to its grave (maxEvents 10).
      expect(onceAroundTakeover(recorded(log), all, 10)).toBeUndefined()
    } finally {
      await own.close()
    }
  })

  it("dead letters: list, retry (delivered ones are removed), drop", async () => {
    const dir = tempDir()
    const env = { TEST_KEY: standIn.apiKey }
    const log = Path.join(dir, "rec.log")
    const rejecting = writeConfig(dir, { failTypes: ["dsync.group.created"], reject: true })
    const rejected = standIn
      .events()
      .filter((e) => e.event === "dsync.group.created")
      .map((e) => e.id)
    const run = start(["run", "-c", rejecting], env)
    await waitUntilAsync(
      "everything else delivered",
      () => recorded(log).length === standIn.size() - rejected.length
    )
    await waitUntilAsync("dead letters", () => run.stderr.includes("dead-lettered"))
    run.child.kill("SIGTERM")
    expect(await run.exited).toBe(0)

    const list = await runToEnd(["dead-letters", "list", "-c", rejecting])
    expect(list.code).toBe(0)
    for (const id of rejected) expect(list.stdout).toContain(id)
    expect(list.stdout).toContain("rejected: no room for dsync.group.created")

    // Still rejected: the retry fails (exit 1) and the dead letters stay.
    const again = await runToEnd(["dead-letters", "retry", "-c", rejecting])
    expect(again.code).toBe(1)
    expect(again.stdout).toContain(
      `0 delivered and removed, ${rejected.length} still dead-lettered`
    )

    // The sink is fixed: retry delivers them and removes them.
    const fixed = writeConfig(dir, {})
    const retried = await runToEnd(["dead-letters", "retry", "-c", fixed, "--sink", "rec"])
    expect(retried.stdout).toContain(
      `retried: ${rejected.length} delivered and removed, 0 still dead-lettered`
    )
    expect(retried.code).toBe(0)
    expect(recorded(log).slice(-rejected.length)).toEqual(rejected)
    expect((await runToEnd(["dead-letters", "list", "-c", fixed])).stdout).toContain(
      "no dead letters"
    )

    // An element of a page that was not even JSON text when stored: it stays, said why.
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = yield* StateStore.sqlite(Path.join(dir, "state.db"))
          yield* store.addDeadLetters(
            "rec",
            [
              {
                eventId: "(no id)",
                eventType: "(no type)",
                event: "not json",
                error: "expected an event",
                attempts: 0,
                firstFailure: 1,
                lastFailure: 1
              }
            ],
            null
          )
        })
      )
    )
    const notJson = await runToEnd(["dead-letters", "retry", "-c", fixed])
    expect(notJson.code).toBe(1)
    expect(notJson.stdout).toMatch(/still failing: not JSON, cannot be delivered/)

    const drop = await runToEnd(["dead-letters", "drop", "-c", fixed])
    expect(drop.code).toBe(2)
    expect(drop.stderr).toContain("dead-letters drop: give either --id <ids> or --all")
    const [both, unknownId, noLimit] = await Promise.all([
      runToEnd(["dead-letters", "drop", "-c", fixed, "--id", "1", "--all"]),
      runToEnd(["dead-letters", "drop", "-c", fixed, "--id", "9999"]),
      runToEnd(["dead-letters", "list", "-c", fixed, "--limit", "0"])
    ])
    expect(both.code).toBe(2)
    expect(both.stderr).toContain("dead-letters drop: give either --id <ids> or --all")
    expect(unknownId.code).toBe(2)
    expect(unknownId.stderr).toContain(
      "--id: no dead letter with id 9999 (dead-letters list shows the ids)"
    )
    expect(noLimit.code).toBe(2)
    expect(noLimit.stderr).toContain("--limit: expected a whole number of at least 1, got 0")
    // A sink renamed in the config: status still tells of the old name's dead letters.
    const renamed = Path.join(dir, "renamed.yaml")
    Fs.writeFileSync(renamed, Fs.readFileSync(fixed, "utf8").replace("  rec:", "  renamed:"))
    expect((await runToEnd(["status", "-c", renamed])).stdout).toContain(
      "dead letters of rec, a sink not in the config: 1 (dead-letters list --sink rec)"
    )
    // None of them dropped anything.
    expect((await runToEnd(["dead-letters", "list", "-c", fixed])).stdout).toContain(
      "expected an event"
    )
    expect((await runToEnd(["dead-letters", "drop", "-c", fixed, "--all"])).code).toBe(0)

    // A misspelt --sink is bad usage, not "no dead letters".
    const typo = await runToEnd(["dead-letters", "list", "-c", fixed, "--sink", "rce"])
    expect(typo.code).toBe(2)
    expect(typo.stderr).toContain(
      "--sink: no sink named rce in the config; did you mean rec? (sinks: rec), and no dead letters of it in the store"
    )
  })

  it("exit codes: 2 for a bad config or usage, 0 for validate and status", async () => {
    const dir = tempDir()
    const bad = Path.join(dir, "bad.yaml")
    Fs.writeFileSync(bad, "source: { type: demo }\nsinks: { out: { type: consol } }\n")
    const config = writeConfig(dir, {})
    const [validateBad, badFlag, badRange, ok, status, connections, badRate, noSink, bareDuration] =
      await Promise.all([
        runToEnd(["validate", "-c", bad]),
        runToEnd(["run", "--no-such-flag"]),
        runToEnd(["replay", "-c", config, "--since", "2026-02-01", "--until", "2026-01-01"]),
        runToEnd(["validate", "-c", config]),
        runToEnd(["status", "-c", config]),
        runToEnd(["validate", "-c", config, "--check-connections"]),
        runToEnd(["demo", "--rate", "-1"]),
        runToEnd(["replay", "-c", config, "--since", "1h", "--sink", ","]),
        runToEnd(["demo", "--duration", "30"])
      ])
    expect(bareDuration.code).toBe(2)
    expect(bareDuration.stderr).toContain(
      '--duration: give a unit, as "30s" or "30m" (0 runs until Ctrl-C)'
    )
    expect(noSink.code).toBe(2)
    expect(noSink.stderr).toContain("--sink: give one or more sink names (sinks: rec)")
    expect(badRate.code).toBe(2)
    expect(badRate.stderr).toContain("--rate: expected 0 or more new events a second, got -1")
    expect(connections.code, connections.stderr).toBe(0)
    expect(connections.stdout).toContain("ok    state store (sqlite)")
    expect(connections.stdout).toContain("ok    WorkOS")
    expect(connections.stdout).toContain("ok    sink rec")
    expect(validateBad.code).toBe(2)
    expect(validateBad.stderr).toContain(
      'sinks.out.type: unknown sink type "consol"; did you mean "console"?'
    )
    expect(badFlag.code).toBe(2)
    expect(badRange.code).toBe(2)
    expect(badRange.stderr).toContain(
      "--until 2026-01-01T00:00:00.000Z is not after --since 2026-02-01T00:00:00.000Z"
    )
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toContain("ok (1 sink(s): rec (recording))")
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toContain("lease: nobody holds it")
    expect(status.stdout).toMatch(/rec\s+\(none yet\)/)
  })

  it("status and dead-letters do not create a SQLite store that is not there (a misspelt path)", async () => {
    const dir = tempDir()
    const config = writeConfig(dir, {})
    const [status, list, drop] = await Promise.all([
      runToEnd(["status", "-c", config]),
      runToEnd(["dead-letters", "list", "-c", config]),
      runToEnd(["dead-letters", "drop", "-c", config, "--id", "3"])
    ])
    const missing = `no SQLite store at ${Path.join(dir, "state.db")} yet (\`run\` creates it)`
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toContain(`state: ${missing}`)
    expect(status.stdout).toMatch(/rec\s+\(none yet\)/)
    expect(list.code).toBe(0)
    expect(list.stdout).toContain(`no dead letters: ${missing}`)
    expect(drop.code).toBe(2)
    expect(drop.stderr).toContain("--id: no dead letter with id 3")
    expect(Fs.existsSync(Path.join(dir, "state.db"))).toBe(false)
  })

  it("a batch still in flight at the shutdown deadline: the summary says the sink was interrupted", async () => {
    const dir = tempDir()
    const inflight = Path.join(dir, "inflight")
    const config = writeConfig(dir, { delayMs: 10_000, inflight }) // shutdownTimeout: 2s
    const run = start(["run", "-c", config])
    await waitUntilAsync("a batch in flight", () => Fs.existsSync(inflight))
    run.child.kill("SIGTERM")
    expect(await run.exited).toBe(0)
    expect(run.stderr).toContain("in-flight batches did not finish within 2000ms")
    expect(run.stderr).toMatch(
      /rec\s+0\s+0\s+0\s+0\s+interrupted at shutdown \(its batch is delivered again next start\)/
    )
  })

  it("SIGINT during `replay` finishes the batch in flight and says the range was not done (exit 1)", async () => {
    const dir = tempDir()
    const log = Path.join(dir, "rec.log")
    const config = writeConfig(dir, { delayMs: 200, maxEvents: 10 })
    const replay = start(["replay", "-c", config, "--since", "2020-01-01T00:00:00Z"])
    await waitUntilAsync("a batch replayed", () => recorded(log).length >= 10)
    replay.child.kill("SIGINT")
    expect(await replay.exited).toBe(1)
    expect(replay.stderr).toContain("SIGINT: stopping; finishing in-flight batches")
    expect(replay.stderr).toContain(
      "replay stopped by a signal before the end of its range; run it again to deliver the rest"
    )
    // What it delivered before stopping is reported, and it is less than the range.
    const delivered = recorded(log).length
    expect(delivered).toBeLessThan(standIn.events().length)
    expect(replay.stdout).toMatch(new RegExp(`rec\\s+${delivered}\\s+0`))
  })

  it("a custom sink in a .ts file Node reads as CommonJS: the error says why and what to change", async () => {
    // Outside Vitest, whose own loader would read the file as a module whatever its folder says.
    const config = Path.join(fixtures, "commonjs-folder", "relay.yaml")
    const { code, stderr } = await runToEnd(["validate", "-c", config])
    expect(code).toBe(2)
    expect(stderr).toContain(
      'sinks.mine.module: could not load module "./sink.ts": Cannot use import statement outside a module: Node read it as CommonJS, as the nearest package.json says "type": "commonjs" (`npm init -y` writes that); set "type": "module" there, or name the file .mts (.mjs for JavaScript)'
    )
  })

  it("a folder given as a custom sink's module: the error says to name the file in it", async () => {
    const config = Path.join(fixtures, "folder-module", "relay.yaml")
    const { code, stderr } = await runToEnd(["validate", "-c", config])
    expect(code).toBe(2)
    expect(stderr).toContain(
      'sinks.mine.module: could not load module "./a-folder": it is a folder; give the file in it (./folder/index.mjs, say)'
    )
  })

  it("a key WorkOS rejects ends `run` (and `replay`) with exit code 1 and says what to check, no retry loop", async () => {
    const dir = tempDir()
    const config = writeConfig(dir, {})
    const before = standIn.requests.length
    const started = Date.now()
    const revoked = { TEST_KEY: "sk_test_revoked" }
    const [run, replay, validate] = await Promise.all([
      runToEnd(["run", "-c", config], revoked),
      runToEnd(["replay", "-c", config, "--since", "2020-01-01T00:00:00Z"], revoked),
      runToEnd(["validate", "-c", config, "--check-connections"], revoked)
    ])
    expect(run.code, run.stderr).toBe(1)
    expect(run.stderr).toContain(
      "workos-relay: WorkOS rejected the API key (401 Unauthorized: Could not authorize the request. Maybe your API key is invalid? (unauthorized)): check source.apiKey / WORKOS_API_KEY"
    )
    // Said once, asked once: not retried, not logged as "retrying".
    expect(run.stderr.match(/rejected the API key/g)).toHaveLength(1)
    expect(run.stderr).not.toContain("retrying")
    expect(run.stderr).toContain("Summary after")
    // A replay reads on its own, and stops the same way.
    expect(replay.code, replay.stderr).toBe(1)
    expect(replay.stderr).toContain("workos-relay: WorkOS rejected the API key (401 Unauthorized")
    expect(validate.code, validate.stdout + validate.stderr).toBe(1)
    expect(validate.stdout).toContain(
      "FAIL  WorkOS: WorkOS rejected the API key (401 Unauthorized: Could not authorize the request. Maybe your API key is invalid? (unauthorized)): check source.apiKey / WORKOS_API_KEY"
    )
    // One request each for run and replay, one for validate: none retried.
    const asked = standIn.requests.slice(before).filter((r) => r.url.pathname === "/events")
    expect(asked.length, JSON.stringify(asked.map((r) => r.url.search))).toBe(3)
    expect(Date.now() - started).toBeLessThan(30_000)
  })

  it("validate --check-connections: an unreachable WorkOS and Slack are named, in seconds", async () => {
    const dir = tempDir()
    const port = await Ports.freePort()
    const config = writeConfig(dir, {})
    const slack = `  chat: { type: slack, token: xoxb-test, channel: "#ops", slackApiUrl: "http://127.0.0.1:${port}/api/" }\n`
    Fs.writeFileSync(
      config,
      Fs.readFileSync(config, "utf8").replace(standIn.url, `http://127.0.0.1:${port}`) + slack
    )
    const started = Date.now()
    const validate = await runToEnd(["validate", "-c", config, "--check-connections"])
    expect(validate.code).toBe(1)
    expect(validate.stdout).toContain(
      `FAIL  WorkOS: WorkOS did not answer GET /events after 2 attempts: connect ECONNREFUSED 127.0.0.1:${port}`
    )
    // A sink that can be reached without sending anything is; the others are only made.
    expect(validate.stdout).toContain(
      `FAIL  sink chat: could not check the Slack token: could not reach Slack: connect ECONNREFUSED 127.0.0.1:${port}`
    )
    expect(validate.stdout).toContain(
      "ok    sink rec (made; sink type recording has no connection check)"
    )
    expect(validate.stderr).toContain("2 connection check(s) failed")
    // Said once, in the table: not also in warnings logged on the way (the retry, the sink's start).
    expect(validate.stdout + validate.stderr).not.toContain("WARN")
    // `run` would retry for about two minutes; a person waiting gets an answer now.
    expect(Date.now() - started).toBeLessThan(15_000)
  })

  it("validate --check-connections: a WorkOS that never answers is named after two 10 s attempts, not two of 30 s", async () => {
    // What a firewall that drops packets, or a stuck proxy, looks like.
    const sockets: Array<Net.Socket> = []
    const silent = Net.createServer((socket) => void sockets.push(socket))
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))
    const port = (silent.address() as Net.AddressInfo).port
    try {
      const dir = tempDir()
      const config = writeConfig(dir, {})
      Fs.writeFileSync(
        config,
        Fs.readFileSync(config, "utf8").replace(standIn.url, `http://127.0.0.1:${port}`)
      )
      const started = Date.now()
      const validate = await runToEnd(["validate", "-c", config, "--check-connections"])
      expect(validate.code).toBe(1)
      expect(validate.stdout).toContain(
        "FAIL  WorkOS: WorkOS did not answer GET /events after 2 attempts: no response within 10s"
      )
      expect(Date.now() - started).toBeLessThan(35_000)
    } finally {
      for (const socket of sockets) socket.destroy()
      silent.close()
    }
  }, 60_000)

  it("status: lag from each checkpoint, or from where a new sink starts; says why when it cannot", async () => {
    const dir = tempDir()
    const all = standIn.events()
    const state = Path.join(dir, "state.db")
    const statusConfig = (name: string, source: string) => {
      const file = Path.join(dir, `${name}.yaml`)
      Fs.writeFileSync(
        file,
        `source:\n${source}\nstate: { sqlite: ${JSON.stringify(state)} }\nsinks:\n  behind: { type: console }\n  done: { type: console }\n  dsync: { type: console, events: ["dsync.*"] }\n  fresh: { type: console }\n`
      )
      return file
    }
    const workos = (key: string, start: string) =>
      `  type: workos\n  apiKey: ${key}\n  baseUrl: ${standIn.url}\n  start: ${start}`
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = yield* StateStore.sqlite(state)
          const at = (i: number) => [all[i]!.id, all[i]!.created_at] as const
          yield* store.commit("behind", ...at(349), null)
          yield* store.commit("dsync", ...at(349), null)
          yield* store.commit("done", ...at(all.length - 1), null)
        })
      )
    )
    const [earliest, latest, revoked, demo] = await Promise.all([
      runToEnd(["status", "-c", statusConfig("earliest", workos(standIn.apiKey, "earliest"))]),
      runToEnd(["status", "-c", statusConfig("latest", workos(standIn.apiKey, "latest"))]),
      runToEnd(["status", "-c", statusConfig("revoked", workos("sk_test_revoked", "earliest"))]),
      runToEnd(["status", "-c", statusConfig("demo", "  type: demo")])
    ])
    const row = (stdout: string, sink: string) =>
      stdout
        .split("\n")
        .find((line) => line.startsWith(`${sink} `))
        ?.split(/\s{2,}/)
    for (const run of [earliest, latest, revoked, demo]) expect(run.code, run.stderr).toBe(0)
    const dsyncAfter = all.slice(350).filter((e) => e.event.startsWith("dsync.")).length

    // [sink, cursor, checkpoint age, lag (events), lag (time), dead letters]
    expect(row(earliest.stdout, "behind")?.slice(3, 4)).toEqual(["50"])
    expect(row(earliest.stdout, "behind")?.[4]).toMatch(/^\d/)
    expect(row(earliest.stdout, "dsync")?.[3]).toBe(String(dsyncAfter))
    expect(row(earliest.stdout, "done")?.slice(3)).toEqual(["0", "0s", "0"])
    expect(row(earliest.stdout, "fresh")?.slice(1, 4)).toEqual(["(none yet)", "-", "100+"])
    expect(earliest.stdout).toContain(
      "fresh: no checkpoint yet; lag counted from where it starts (source.start: earliest)"
    )
    expect(earliest.stdout).not.toContain("?")

    expect(row(latest.stdout, "fresh")?.slice(1)).toEqual(["(none yet)", "-", "-", "-", "0"])
    expect(latest.stdout).toContain(
      "fresh: no checkpoint yet; its first run starts at the newest event (source.start: latest)"
    )
    expect(row(latest.stdout, "behind")?.[3]).toBe("50")

    expect(row(revoked.stdout, "behind")?.slice(3, 5)).toEqual(["unknown", "unknown"])
    expect(revoked.stdout).toContain(
      "lag: unknown: WorkOS rejected the API key (401 Unauthorized: Could not authorize the request. Maybe your API key is invalid? (unauthorized)): check source.apiKey / WORKOS_API_KEY"
    )

    // A server that ignores the type filter: the lag still counts only what the sink takes.
    standIn.quirks.ignoreEventsFilter = true
    const unfiltered = await runToEnd([
      "status",
      "-c",
      statusConfig("unfiltered", workos(standIn.apiKey, "earliest"))
    ]).finally(() => {
      standIn.quirks.ignoreEventsFilter = false
    })
    expect(row(unfiltered.stdout, "dsync")?.[3]).toBe(String(dsyncAfter))

    expect(row(demo.stdout, "behind")?.slice(3, 5)).toEqual(["-", "-"])
    expect(demo.stdout).toContain(
      "lag: not measured: a demo source's WorkOS stand-in lives only inside `run`"
    )
  })

  it("mounts the audit-log commands: verify and query what the audit sink wrote", async () => {
    const dir = tempDir()
    const database = Path.join(dir, "audit.db")
    const config = writeConfig(dir, {})
    // A second sink beside the recording one: the audit log, in its own SQLite file.
    Fs.writeFileSync(
      config,
      Fs.readFileSync(config, "utf8").replace(
        "sinks:\n",
        `sinks:\n  audit:\n    type: audit-log\n    path: ${JSON.stringify(database)}\n`
      )
    )
    const relay = start(["run", "-c", config])
    const audited = () => {
      if (!Fs.existsSync(database)) return 0
      const db = new DatabaseSync(database, { readOnly: true })
      try {
        return (db.prepare("SELECT count(*) AS n FROM audit_records").get() as { n: number }).n
      } catch {
        return 0 // the sink has not created its tables yet
      } finally {
        db.close()
      }
    }
    await waitUntilAsync("every event in the audit log", () => audited() === 400)
    relay.child.kill("SIGTERM")
    expect(await relay.exited, relay.stderr).toBe(0)

    const verified = await runToEnd(["audit", "verify", "--sqlite", database])
    expect(verified.code, verified.stderr).toBe(0)
    expect(verified.stdout).toContain("OK: 400 record(s) verified from the start")
    const queried = await runToEnd([
      "audit",
      "query",
      "--sqlite",
      database,
      "--type",
      "user.*",
      "--format",
      "json"
    ])
    expect(queried.code, queried.stderr).toBe(0)
    const rows = JSON.parse(queried.stdout) as Array<{ type: string }>
    expect(rows.length).toBeGreaterThan(0)
    expect(rows.every((row) => row.type.startsWith("user."))).toBe(true)
  })

  it("runs a mirror sink and mounts the mirror commands: status and reconcile against WorkOS's lists", async () => {
    const dir = tempDir()
    const database = Path.join(dir, "mirror.db")
    const config = writeConfig(dir, {})
    Fs.writeFileSync(
      config,
      Fs.readFileSync(config, "utf8").replace(
        "sinks:\n",
        `sinks:\n  mirror:\n    type: mirror\n    path: ${JSON.stringify(database)}\n`
      )
    )
    const env = { TEST_KEY: standIn.apiKey }
    const relay = start(["run", "-c", config], env)
    const lastId = standIn
      .events()
      .map((e) => e.id)
      .at(-1)!
    // The checkpoint of the mirror sink passes the last event once its batch is applied.
    const applied = () => {
      if (!Fs.existsSync(Path.join(dir, "state.db"))) return false
      const db = new DatabaseSync(Path.join(dir, "state.db"), { readOnly: true })
      try {
        const row = db
          .prepare("SELECT cursor FROM relay_checkpoints WHERE sink = 'mirror'")
          .get() as { cursor: string } | undefined
        return row?.cursor === lastId
      } catch {
        return false
      } finally {
        db.close()
      }
    }
    await waitUntilAsync("the mirror caught up", applied)
    relay.child.kill("SIGTERM")
    expect(await relay.exited, relay.stderr).toBe(0)

    const status = await runToEnd(["mirror", "status", "-c", config])
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toMatch(/workos_users\s+\d+\s+\d+/)
    expect(status.stdout).toContain("last event applied: event_")
    const reconciled = await runToEnd(["mirror", "reconcile", "-c", config], env)
    expect(reconciled.code, reconciled.stderr).toBe(0)
    expect(reconciled.stdout).toMatch(/^reconciled mirror .*mirror\.db with WorkOS's lists/)
    const again = await runToEnd(["mirror", "status", "-c", config])
    expect(again.stdout).toMatch(/last reconcile: .*users: /)
  })

  it("SIGTERM waits for the batch in flight; a second SIGTERM exits at once with 130", async () => {
    const dir = tempDir()
    const inflight = Path.join(dir, "inflight")
    const config = writeConfig(dir, { delayMs: 20_000, maxEvents: 5, inflight })
    const proc = start(["run", "-c", config])
    await waitUntilAsync("a batch in flight", () => Fs.existsSync(inflight))
    proc.child.kill("SIGTERM")
    await waitUntilAsync("it says it is stopping", () =>
      proc.stderr.includes("finishing in-flight batches")
    )
    const stillRunning = await Promise.race([
      proc.exited.then(() => false),
      new Promise((r) => setTimeout(() => r(true), 500))
    ])
    expect(stillRunning).toBe(true)
    proc.child.kill("SIGTERM")
    expect(await proc.exited).toBe(130)
    expect(proc.stderr).toContain("SIGTERM again: exiting now")
  })

  it("stdout closed by its reader (`run | head`): the console sink stops, the others go on", async () => {
    // More lines than a pipe holds, so the console writes after the reader has gone.
    const many = await WorkOSStandIn.start({ events: 3000 })
    try {
      const dir = tempDir()
      const config = Path.join(dir, "relay.yaml")
      const log = Path.join(dir, "rec.log")
      Fs.writeFileSync(
        config,
        `source:
  type: workos
  apiKey: \${TEST_KEY}
  baseUrl: ${many.url}
  start: earliest
state: { sqlite: ./state.db }
log: { format: json }
sinks:
  rec: { module: ${JSON.stringify(recordingSink)}, path: ${JSON.stringify(log)} }
  out: { type: console }
`
      )
      const proc = start(["run", "-c", config], { TEST_KEY: many.apiKey })
      await waitUntilAsync("the console prints", () => proc.stdout.includes("\n"))
      proc.child.stdout!.destroy()
      await waitUntilAsync("the console sink stops", () =>
        proc.stderr.includes("sink out stopped: cannot print to stdout")
      )
      await waitUntilAsync(
        "the other sink delivers everything",
        () => recorded(log).length === 3000
      )
      proc.child.kill("SIGTERM")
      expect(await proc.exited).toBe(1)
      expect(proc.stderr).toContain("sink(s) stopped on errors: out: cannot print to stdout")
      expect(proc.stderr).not.toContain("Unhandled 'error' event")
    } finally {
      await many.close()
    }
  })

  it("with a console sink, stdout holds only its JSON lines: the report and the stopping line go to stderr, as JSON logs", async () => {
    const standIn = await WorkOSStandIn.start({ events: 40 })
    try {
      const dir = tempDir()
      const config = Path.join(dir, "relay.yaml")
      Fs.writeFileSync(
        config,
        `source:
  type: workos
  apiKey: \${TEST_KEY}
  baseUrl: ${standIn.url}
  start: earliest
state: { sqlite: ./state.db }
log: { format: json }
sinks:
  out: { type: console, format: json }
`
      )
      const proc = start(["run", "-c", config], { TEST_KEY: standIn.apiKey })
      await waitUntilAsync("40 lines", () => proc.stdout.split("\n").filter(Boolean).length >= 40)
      proc.child.kill("SIGTERM")
      expect(await proc.exited).toBe(0)
      const lines = proc.stdout.split("\n").filter(Boolean)
      expect(lines.map((line) => JSON.parse(line).id)).toEqual(standIn.events().map((e) => e.id))
      expect(proc.stderr).toContain("Summary after")
      const stopping = proc.stderr.split("\n").find((line) => line.includes("SIGTERM: stopping"))
      expect(stopping, proc.stderr).toBeDefined()
      expect(JSON.parse(stopping!).message).toContain(
        "SIGTERM: stopping; finishing in-flight batches"
      )
    } finally {
      await standIn.close()
    }
  })

  it("WorkOS unreachable at start-up: `run` starts, keeps asking, saves its start, and stops cleanly on SIGTERM", async () => {
    const gone = await WorkOSStandIn.start({ events: 0 })
    await gone.close()
    const dir = tempDir()
    const config = Path.join(dir, "relay.yaml")
    Fs.writeFileSync(
      config,
      `source: { type: workos, apiKey: sk_test_x, baseUrl: ${gone.url}, start: latest, pollInterval: 50ms }
state: { sqlite: ./state.db }
log: { format: json }
sinks:
  rec: { module: ${JSON.stringify(recordingSink)}, path: ${JSON.stringify(Path.join(dir, "rec.log"))} }
`
    )
    const proc = start(["run", "-c", config])
    await waitUntilAsync("a failed attempt", () => proc.stderr.includes("ECONNREFUSED"))
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect(proc.child.exitCode, proc.stderr).toBeNull()
    proc.child.kill("SIGTERM")
    expect(await proc.exited, proc.stderr).toBe(0)
    const status = await runToEnd(["status", "-c", config])
    // The start was saved as a time though WorkOS never answered.
    expect(status.stdout).toMatch(/^rec\s+\d{4}-\d{2}-\d{2}T/m)
  })
})
