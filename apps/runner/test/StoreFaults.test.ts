/**
 * The state store under faults, with real runner processes: a write lock another
 * process holds for seconds, a full disk, a read-only folder. Counted at the sink:
 * each event id exactly once (no takeover happens in these runs: the lease outlives
 * the fault). The full-disk and read-only cases need a tmpfs (root); skipped otherwise.
 * Also the audit log's SQLite file locked for seconds during `run`, counted in the log.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { WorkOSStandIn } from "@workos-relay/testing"
import { onceAroundTakeover, recorded, recordingSink, tempDir, waitUntilAsync } from "./helpers.ts"

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")

interface Proc {
  readonly child: ChildProcess
  stderr: string
  readonly exited: Promise<number | null>
}

const spawnNode = (args: ReadonlyArray<string>): Proc => {
  const child = spawn(process.execPath, ["--conditions=@workos-relay/source", ...args], {
    stdio: ["ignore", "pipe", "pipe"]
  })
  const proc: Proc = {
    child,
    stderr: "",
    exited: new Promise((resolve) => child.on("exit", (code) => resolve(code)))
  }
  child.stdout!.resume()
  child.stderr!.on("data", (d) => {
    proc.stderr += d
  })
  return proc
}

const runner = (config: string) => spawnNode([bin, "run", "-c", config])

/** Holds SQLite's write lock on `file` (BEGIN IMMEDIATE) for `ms`; says "locked" and "released" on stderr. */
const lockHolder = (file: string, ms: number) =>
  spawnNode([
    "-e",
    `const { DatabaseSync } = require("node:sqlite")
     const db = new DatabaseSync(${JSON.stringify(file)}, { timeout: 30000 })
     db.exec("BEGIN IMMEDIATE")
     process.stderr.write("locked\\n")
     Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${ms})
     db.exec("COMMIT")
     process.stderr.write("released\\n")`
  ])

const portOf = (proc: Proc): number | undefined => {
  const m = /health and metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(proc.stderr)
  return m === null ? undefined : Number(m[1])
}

const healthz = (port: number) =>
  new Promise<number>((resolve, reject) => {
    Http.get({ host: "127.0.0.1", port, path: "/healthz" }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    }).on("error", reject)
  })

/** How many times each id reached the sink; every expected id must be there exactly once. */
const expectEachOnce = (got: ReadonlyArray<string>, all: ReadonlyArray<string>) => {
  const counts = new Map<string, number>()
  for (const id of got) counts.set(id, (counts.get(id) ?? 0) + 1)
  const twice = [...counts].filter(([, n]) => n > 1)
  expect(twice, "delivered more than once").toEqual([])
  expect(got).toEqual(all)
}

let standIn: WorkOSStandIn.StandIn
beforeAll(async () => {
  standIn = await WorkOSStandIn.start({ events: 300 })
})
afterAll(() => standIn.close())

const writeConfig = (dir: string, state: string, leaseTtl = "30s") => {
  const file = Path.join(dir, "relay.yaml")
  Fs.writeFileSync(
    file,
    `source: { type: workos, apiKey: ${standIn.apiKey}, baseUrl: ${standIn.url}, start: earliest, pollInterval: 50ms }
state:
  sqlite: ${JSON.stringify(state)}
  leaseTtl: ${leaseTtl}
http: { address: "127.0.0.1:0" }
log: { format: json }
shutdownTimeout: 5s
sinks:
  rec: { module: ${JSON.stringify(recordingSink)}, path: ${JSON.stringify(Path.join(dir, "rec.log"))}, delayMs: 30, maxEvents: 10 }
`
  )
  return file
}

const canMount = (() => {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return false
  const dir = tempDir("relay-mount-probe-")
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir], { stdio: "ignore" })
    execFileSync("umount", [dir], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

const tmpfs = (sizeKb: number) => {
  const dir = tempDir("relay-tmpfs-")
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeKb}k`, "tmpfs", dir])
  return { dir, unmount: () => execFileSync("umount", ["-l", dir]) }
}

/** Fills the file system of `dir` until a write fails with ENOSPC. */
const fill = (dir: string) => {
  const file = Path.join(dir, "filler")
  const fd = Fs.openSync(file, "w")
  const chunk = Buffer.alloc(4096, 1)
  try {
    while (true) Fs.writeSync(fd, chunk)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e
  } finally {
    Fs.closeSync(fd)
  }
  return file
}

describe("the state store under faults", { timeout: 120_000 }, () => {
  it("a write lock held 8 s by another process: /healthz answers, delivery pauses and resumes, the standby stays, each event once", async () => {
    const dir = tempDir()
    const state = Path.join(dir, "state.db")
    const config = writeConfig(dir, state)
    const log = Path.join(dir, "rec.log")
    const before = standIn.size()
    const a = runner(config)
    await waitUntilAsync("a delivers all there is", () => recorded(log).length === before)
    const b = runner(config)
    await waitUntilAsync("b waits as a standby", () => b.stderr.includes("hot standby"))
    const [portA, portB] = [portOf(a)!, portOf(b)!]
    expect(portA).toBeGreaterThan(0)
    expect(portB).toBeGreaterThan(0)

    const lock = lockHolder(state, 8_000)
    await waitUntilAsync("the lock is held", () => lock.stderr.includes("locked"))
    // New events while the store is locked: a delivers a batch, then waits on its checkpoint.
    standIn.appendGenerated(100)
    const all = standIn.events().map((e) => e.id)
    const atLock = recorded(log).length
    // Both runners answer their health checks while the lock is held (one at a time,
    // as a prober would), and both are still running.
    let answered = 0
    while (!lock.stderr.includes("released")) {
      const [ha, hb] = await Promise.all([healthz(portA), healthz(portB)])
      expect([ha, hb]).toEqual([200, 200])
      if (!lock.stderr.includes("released")) answered++
      await new Promise((r) => setTimeout(r, 200))
    }
    expect(await lock.exited, lock.stderr).toBe(0)
    expect(answered).toBeGreaterThan(5)
    // Delivery paused: the lane delivered one batch, then waited on its checkpoint.
    const duringLock = recorded(log).length - atLock
    expect(duringLock).toBeLessThanOrEqual(10)
    expect(a.child.exitCode).toBeNull()
    expect(b.child.exitCode).toBeNull()
    expect(a.stderr).toMatch(
      /SQLite state store at \S+state\.db: save the checkpoint of sink rec \(event_\w+\) failed: database is locked: another process holds the database's write lock; retrying/
    )

    await waitUntilAsync("every event delivered", () => recorded(log).length >= all.length)
    a.child.kill("SIGTERM")
    expect(await a.exited, a.stderr).toBe(0)
    await waitUntilAsync("b takes over", () => b.stderr.includes("took over the lease"))
    b.child.kill("SIGTERM")
    expect(await b.exited, b.stderr).toBe(0)
    expectEachOnce(recorded(log), all)
  })

  it.skipIf(!canMount)(
    "a full disk mid-run: the checkpoint is retried (delivery pauses, /healthz answers), then everything once",
    async () => {
      const fs = tmpfs(1024)
      try {
        const dir = tempDir()
        const state = Path.join(fs.dir, "state.db")
        const config = writeConfig(dir, state)
        const log = Path.join(dir, "rec.log")
        const all = standIn.events().map((e) => e.id)
        const a = runner(config)
        await waitUntilAsync("a delivers", () => recorded(log).length >= 30)
        const filler = fill(fs.dir)
        await waitUntilAsync("the full disk is logged", () =>
          a.stderr.includes("database or disk is full")
        )
        expect(a.stderr).toContain(
          `SQLite state store at ${state}: save the checkpoint of sink rec`
        )
        const paused = recorded(log).length
        expect(await healthz(portOf(a)!)).toBe(200)
        expect(a.child.exitCode).toBeNull()
        expect(paused).toBeLessThan(all.length)
        Fs.rmSync(filler)
        await waitUntilAsync("every event delivered", () => recorded(log).length >= all.length)
        await waitUntilAsync("recovery logged", () => /succeeded after/.test(a.stderr))
        a.child.kill("SIGTERM")
        expect(await a.exited, a.stderr).toBe(0)
        expectEachOnce(recorded(log), all)
      } finally {
        fs.unmount()
      }
    }
  )

  it.skipIf(!canMount)(
    "a full disk or a read-only folder at start: `run` ends with exit 1, naming the store and its file, no stack trace",
    async () => {
      const full = tmpfs(256)
      const readOnly = tmpfs(1024)
      try {
        fill(full.dir)
        const dir = tempDir()
        const fullState = Path.join(full.dir, "state.db")
        const onFull = runner(writeConfig(dir, fullState))
        expect(await onFull.exited, onFull.stderr).toBe(1)
        expect(onFull.stderr).toContain(`workos-relay: SQLite state store at ${fullState}: `)
        expect(onFull.stderr).toMatch(/full/)
        expect(onFull.stderr).not.toMatch(/\n\s+at /)

        execFileSync("mount", ["-o", "remount,ro", readOnly.dir])
        const roState = Path.join(readOnly.dir, "state.db")
        const dir2 = tempDir()
        const onRo = runner(writeConfig(dir2, roState))
        expect(await onRo.exited, onRo.stderr).toBe(1)
        expect(onRo.stderr).toContain(
          `workos-relay: SQLite state store at ${roState}: open the database failed`
        )
        expect(onRo.stderr).not.toMatch(/\n\s+at /)
        expect(recorded(Path.join(dir, "rec.log"))).toEqual([])
      } finally {
        full.unmount()
        readOnly.unmount()
      }
    }
  )
})

/** The event ids in an audit-log SQLite file, row by row in chain order (none before it exists). */
const auditIds = (file: string): Array<string> => {
  if (!Fs.existsSync(file)) return []
  const db = new DatabaseSync(file, { readOnly: true })
  try {
    return db
      .prepare("SELECT id FROM audit_records ORDER BY seq")
      .all()
      .map((row) => (row as { id: string }).id)
  } catch {
    return [] // not created yet
  } finally {
    db.close()
  }
}

describe("the audit log under faults", { timeout: 120_000 }, () => {
  it("its SQLite write lock held 15 s by another process: /healthz answers, the append is retried, each event once", async () => {
    const dir = tempDir()
    const audit = Path.join(dir, "audit.db")
    const config = Path.join(dir, "relay.yaml")
    Fs.writeFileSync(
      config,
      `source: { type: workos, apiKey: ${standIn.apiKey}, baseUrl: ${standIn.url}, start: earliest, pollInterval: 50ms }
state: { sqlite: ${JSON.stringify(Path.join(dir, "state.db"))} }
http: { address: "127.0.0.1:0" }
log: { format: json }
shutdownTimeout: 5s
sinks:
  audit: { type: audit-log, path: ${JSON.stringify(audit)} }
`
    )
    const before = standIn.size()
    const a = runner(config)
    await waitUntilAsync(
      "the audit log holds all there is",
      () => auditIds(audit).length === before
    )
    const port = portOf(a)!
    expect(port).toBeGreaterThan(0)

    // Longer than the writer's busy timeout (10 s): the append fails as locked and is retried.
    const lock = lockHolder(audit, 15_000)
    await waitUntilAsync("the lock is held", () => lock.stderr.includes("locked"))
    standIn.appendGenerated(100)
    const all = standIn.events().map((e) => e.id)
    let answered = 0
    while (!lock.stderr.includes("released")) {
      expect(await healthz(port)).toBe(200)
      // Nothing gets in while the lock is held.
      if (!lock.stderr.includes("released")) {
        expect(auditIds(audit).length).toBe(before)
        answered++
      }
      await new Promise((r) => setTimeout(r, 200))
    }
    expect(await lock.exited, lock.stderr).toBe(0)
    expect(answered).toBeGreaterThan(10)
    expect(a.child.exitCode).toBeNull()
    expect(a.stderr).toContain(`SQLite audit log ${audit}: appending a batch failed`)
    expect(a.stderr).toMatch(/held the database's lock longer than the busy timeout/)

    await waitUntilAsync("every event in the audit log", () => auditIds(audit).length >= all.length)
    a.child.kill("SIGTERM")
    expect(await a.exited, a.stderr).toBe(0)
    expectEachOnce(auditIds(audit), all)
  })
})

describe("onceAroundTakeover, the standby tests' count", () => {
  const all = Array.from({ length: 40 }, (_, i) => `event_${i}`)
  it("passes each id once, and one batch delivered again at the takeover", () => {
    expect(onceAroundTakeover(all, all, 10)).toBeUndefined()
    expect(onceAroundTakeover([...all.slice(0, 25), ...all.slice(18)], all, 10)).toBeUndefined()
  })
  it("fails two runners delivering at once, more than a batch again, a loss, a reordering", () => {
    // Both from the start, batches of 10 interleaved: what a standby that does not wait does.
    const both = [...all.slice(0, 10), ...all.slice(0, 10), ...all.slice(10, 20), ...all.slice(10)]
    expect(onceAroundTakeover(both, all, 10)).toMatch(/not each once/)
    expect(onceAroundTakeover([...all.slice(0, 25), ...all.slice(5)], all, 10)).toMatch(
      /20 ids delivered twice/
    )
    expect(onceAroundTakeover(all.slice(0, 39), all, 10)).toMatch(/only 39 of 40/)
    expect(onceAroundTakeover([...all.slice(0, 20), ...all.slice(21)], all, 10)).toMatch(
      /not an id already delivered/
    )
  })
})
