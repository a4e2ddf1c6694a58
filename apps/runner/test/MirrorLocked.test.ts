/**
 * A runner delivering to a SQLite mirror while another process (an application)
 * holds the mirror file's write lock for seconds: `/healthz` keeps answering, the
 * batch waits and lands once the lock is released, and the tables end as applying
 * each event once in order leaves them (counted per table, with the last event id).
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Mapping } from "@workos-relay/sink-mirror"
import { WorkOSStandIn } from "@workos-relay/testing"
// The mirror's own workload and its sequential reference of what the tables hold.
import { history, reference } from "../../../packages/sink-mirror/test/workload.ts"
import { tempDir, waitUntilAsync } from "./helpers.ts"

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")

const node = (args: ReadonlyArray<string>) => {
  const child = spawn(process.execPath, ["--conditions=@workos-relay/source", ...args], {
    stdio: ["ignore", "pipe", "pipe"]
  })
  const proc = { child, stderr: "", exited: undefined as unknown as Promise<number | null> }
  child.stdout.resume()
  child.stderr.on("data", (d) => (proc.stderr += d))
  proc.exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)))
  return proc
}

/** Holds the write lock of `file` (BEGIN IMMEDIATE, a row of its own) for `ms`. */
const lockHolder = (file: string, ms: number) =>
  node([
    "-e",
    `const { DatabaseSync } = require("node:sqlite")
     const db = new DatabaseSync(${JSON.stringify(file)}, { timeout: 30000 })
     db.exec("BEGIN IMMEDIATE")
     db.exec("CREATE TABLE IF NOT EXISTS app_notes (note TEXT)")
     db.exec("INSERT INTO app_notes VALUES ('mine')")
     process.stderr.write("locked\\n")
     Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${ms})
     db.exec("COMMIT")
     process.stderr.write("released\\n")`
  ])

const healthz = (port: number) =>
  new Promise<number>((resolve, reject) => {
    const request = Http.get(
      { host: "127.0.0.1", port, path: "/healthz", timeout: 2_000 },
      (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      }
    )
    request.on("timeout", () => request.destroy(new Error("no answer within 2 s")))
    request.on("error", reject)
  })

const query = <A>(file: string, sql: string): A => {
  const db = new DatabaseSync(file, { readOnly: true })
  try {
    return db.prepare(sql).get() as A
  } finally {
    db.close()
  }
}

let standIn: WorkOSStandIn.StandIn
beforeAll(async () => {
  standIn = await WorkOSStandIn.start({ events: 0 })
})
afterAll(() => standIn.close())

describe("a runner and a mirror file another process locks", () => {
  it("answers /healthz during a 5 s lock; the batch lands after it, each event applied once", async () => {
    const dir = tempDir("mirror-locked-")
    const database = Path.join(dir, "mirror.db")
    const config = Path.join(dir, "relay.yaml")
    Fs.writeFileSync(
      config,
      `source: { type: workos, apiKey: ${standIn.apiKey}, baseUrl: ${standIn.url}, start: earliest, pollInterval: 50ms }
state:
  sqlite: ./state.db
http: { address: "127.0.0.1:0" }
shutdownTimeout: 5s
sinks:
  mirror:
    type: mirror
    path: ${JSON.stringify(database)}
`
    )
    const events = history(600, 23)
    const input = (e: (typeof events)[number]) => ({
      event: e.event,
      data: (e as { data: unknown }).data
    })
    standIn.append(events.slice(0, 300).map(input))
    const lastOf = () =>
      standIn
        .events()
        .filter((e) => Mapping.eventTypes.includes(e.event))
        .at(-1)!.id
    // Undefined until the sink has made its tables.
    const applied = () => {
      try {
        return query<{ value: string } | undefined>(
          database,
          "SELECT value FROM workos_mirror_meta WHERE key = 'last_event_id'"
        )?.value
      } catch {
        return undefined
      }
    }
    const relay = node([bin, "run", "-c", config])
    const first = lastOf()
    await waitUntilAsync("the first events applied", () => applied() === first, 60_000)
    const port = Number(/health and metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(relay.stderr)![1])

    const holder = lockHolder(database, 5_000)
    await waitUntilAsync("the lock taken", () => holder.stderr.includes("locked"), 30_000)
    standIn.append(events.slice(300).map(input))
    const last = lastOf()
    // While it is held: health answers, every time, and the new events wait.
    let answered = 0
    while (!holder.stderr.includes("released")) {
      expect(await healthz(port)).toBe(200)
      answered++
      if (!holder.stderr.includes("released")) expect(applied()).toBe(first)
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(answered).toBeGreaterThan(5)
    await waitUntilAsync("the rest applied", () => applied() === last, 60_000)
    relay.child.kill("SIGTERM")
    expect(await relay.exited, relay.stderr).toBe(0)
    expect(await holder.exited).toBe(0)

    // The tables as applying each served event once, in order: rows counted per table.
    const served = standIn.events().filter((e) => Mapping.eventTypes.includes(e.event))
    const expected = reference(served as never)
    for (const [table, rows] of expected) {
      const live = rows.filter((r) => r.deletedAt === null).length
      expect(
        query<{ live: number; deleted: number }>(
          database,
          `SELECT count(*) - count(deleted_at) AS live, count(deleted_at) AS deleted FROM workos_${table}`
        ),
        table
      ).toEqual({ live, deleted: rows.length - live })
    }
    expect(query<{ n: number }>(database, "SELECT count(*) AS n FROM app_notes").n).toBe(1)
  }, 120_000)
})
