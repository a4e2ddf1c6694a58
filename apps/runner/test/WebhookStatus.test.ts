/**
 * The webhook table end to end: a runner with the doorbell receives signed webhooks
 * from the stand-in, and `status` (a CLI process) shows the figures; an event that
 * was announced but that the Events API never returns is reported overdue, also
 * after a restart.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { describe, expect, it } from "@effect/vitest"
import { WorkOS as WorkOSNode } from "@workos-inc/node"
import { WorkOSStandIn, WorkOSWebhooks } from "@workos-relay/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import { load } from "../src/config/Load.ts"
import * as HttpServer from "../src/http/Server.ts"
import { Metrics } from "../src/Observability.ts"
import * as Runner from "../src/Runner.ts"
import * as StateStore from "../src/StateStore.ts"
import { Deliveries } from "../src/webhooks/Deliveries.ts"
import { Doorbell } from "../src/webhooks/Doorbell.ts"
import * as Ingress from "../src/webhooks/Ingress.ts"
import { recorded, recordingSink, tempDir, waitUntil } from "./helpers.ts"

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")
const secret = "whsec_table"
const sdk = new WorkOSNode("sk_test_webhooks")

const writeConfig = (dir: string, standIn: WorkOSStandIn.StandIn) => {
  const file = Path.join(dir, "relay.yaml")
  Fs.writeFileSync(
    file,
    `source:
  type: workos
  apiKey: ${standIn.apiKey}
  baseUrl: ${standIn.url}
  start: earliest
  pollInterval: 1h
state:
  sqlite: ./state.db
  leaseTtl: 2s
http: { address: "127.0.0.1:0" }
webhooks:
  secrets: ["${secret}"]
  visibilityDelay: 100ms
  debounce: 20ms
  overdueAfter: 1s
shutdownTimeout: 2s
sinks:
  rec:
    module: ${JSON.stringify(recordingSink)}
    path: ${JSON.stringify(Path.join(dir, "rec.log"))}
`
  )
  return file
}

/** The runner in this process, on the config file; its port once it listens. */
const startRelay = (file: string) =>
  Effect.gen(function* () {
    const config = yield* load(file, {})
    const stop = yield* Deferred.make<void>()
    const metrics = new Metrics()
    const listening = yield* Deferred.make<number>()
    const running = yield* Runner.run(config, {
      stop,
      metrics,
      onListening: (port) => Deferred.doneUnsafe(listening, Effect.succeed(port))
    }).pipe(Effect.forkScoped)
    const port = yield* Deferred.await(listening)
    return {
      url: `http://127.0.0.1:${port}/webhooks/workos`,
      metrics,
      stop: Deferred.succeed(stop, undefined).pipe(Effect.andThen(Fiber.join(running)))
    }
  })

/** `workos-relay status -c file` as a child process: its exit code and output. */
const status = (file: string) =>
  Effect.promise(
    () =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          ["--conditions=@workos-relay/source", bin, "status", "-c", file],
          { stdio: ["ignore", "pipe", "pipe"] }
        )
        let stdout = ""
        let stderr = ""
        child.stdout.on("data", (d) => {
          stdout += d
        })
        child.stderr.on("data", (d) => {
          stderr += d
        })
        child.on("exit", (code) => resolve({ code, stdout, stderr }))
      })
  )

/** A webhook of `body`, signed now with the endpoint's secret by WorkOS's SDK. */
const post = (url: string, body: string) =>
  Effect.promise(async () => {
    const t = Date.now()
    const hex = await sdk.webhooks.computeSignature(t, body, secret)
    const r = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "workos-signature": `t=${t}, v1=${hex}` },
      body
    })
    return r.status
  })

const metric = (metrics: Metrics, name: string) =>
  Number(new RegExp(`^${name} (\\S+)$`, "m").exec(String(metrics.render()))?.[1])

describe("webhook table", () => {
  it.live(
    "status shows the webhooks received, push ahead of pull, and an announced event never returned, across a restart",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 5 })
        const dir = tempDir()
        const file = writeConfig(dir, standIn)
        const log = Path.join(dir, "rec.log")

        const relay = yield* startRelay(file)
        yield* waitUntil("the seeded events", () => recorded(log).length === 5)
        const sender = WorkOSWebhooks.sendTo(standIn, { url: relay.url, secret, duplicate: 0.5 })
        standIn.appendGenerated(3)
        yield* waitUntil("the appended events", () => recorded(log).length === 8)
        yield* Effect.promise(() => sender.idle())
        sender.stop()
        // WorkOS announces an event its Events API never returns (lost on its side).
        const lost = { ...standIn.events()[7]!, id: "event_01LOSTLOSTLOSTLOSTLOSTLOST" }
        expect(yield* post(relay.url, JSON.stringify(lost))).toBe(200)
        yield* waitUntil(
          "the lost event reported overdue",
          () => metric(relay.metrics, "workos_relay_webhooks_overdue_total") === 1
        )
        expect(metric(relay.metrics, "workos_relay_webhooks_pending")).toBe(1)
        yield* relay.stop
        expect(recorded(log)).toEqual(standIn.events().map((e) => e.id))

        const first = yield* status(file)
        expect(first.code, first.stderr).toBe(0)
        expect(first.stdout).toMatch(
          /^webhooks: 4 received in the last hour; the Events API returned 3 of them \S+ \(median\) and \S+ \(max\) after the webhook$/m
        )
        expect(first.stdout).toMatch(
          /^webhooks: 1 announced event\(s\) not returned by the Events API after 1\.0s \(overdue\):$/m
        )
        expect(first.stdout).toMatch(
          /^ {2}event_01LOSTLOSTLOSTLOSTLOSTLOST \(\S+\), announced \S+Z \(\S+ ago\)$/m
        )

        // A restart: the pending event is watched again and reported; a repeat of a
        // delivery already read before the restart is no news and not pending.
        const again = yield* startRelay(file)
        yield* waitUntil(
          "the lost event reported overdue again",
          () => metric(again.metrics, "workos_relay_webhooks_overdue_total") === 1
        )
        expect(yield* post(again.url, JSON.stringify(standIn.events()[6]!))).toBe(200)
        expect(metric(again.metrics, "workos_relay_webhooks_duplicates_total")).toBe(1)
        expect(metric(again.metrics, "workos_relay_webhooks_pending")).toBe(1)
        yield* again.stop

        const second = yield* status(file)
        expect(second.code, second.stderr).toBe(0)
        expect(second.stdout).toContain("webhooks: 4 received in the last hour")
        expect(second.stdout).toMatch(/^ {2}event_01LOSTLOSTLOSTLOSTLOSTLOST /m)
        expect(recorded(log)).toEqual(standIn.events().map((e) => e.id))
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "webhooks a standby kept in the store are watched by the runner that reads: one already read is marked seen, one never returned is overdue",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 5 })
        const dir = tempDir()
        const file = writeConfig(dir, standIn)
        const relay = yield* startRelay(file)
        yield* waitUntil(
          "the seeded events",
          () => recorded(Path.join(dir, "rec.log")).length === 5
        )
        // What a standby behind the same load balancer writes: rows this runner never received.
        const read = standIn.events()[1]!
        const standby = new DatabaseSync(Path.join(dir, "state.db"))
        const insert = standby.prepare(
          "INSERT INTO relay_webhooks (event_id, event_type, received_at) VALUES (?, ?, ?)"
        )
        insert.run(read.id, read.event, Date.now())
        insert.run("event_01STANDBYLOSTLOSTLOSTLOST", "user.created", Date.now())
        const seenAt = (id: string) =>
          (
            standby.prepare("SELECT seen_at FROM relay_webhooks WHERE event_id = ?").get(id) as {
              seen_at: number | null
            }
          ).seen_at
        yield* waitUntil("the row already read marked seen", () => seenAt(read.id) !== null)
        yield* waitUntil(
          "the standby's lost event reported overdue",
          () => metric(relay.metrics, "workos_relay_webhooks_overdue_total") === 1
        )
        expect(seenAt("event_01STANDBYLOSTLOSTLOSTLOST")).toBeNull()
        expect(metric(relay.metrics, "workos_relay_webhooks_pending")).toBe(1)
        standby.close()
        yield* relay.stop
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "a delivery the store cannot keep (locked by another process) gets 503; WorkOS's retry is kept",
    () =>
      Effect.gen(function* () {
        const path = Path.join(tempDir(), "state.db")
        // The store retries a lock for as long as `run` would (untilDone); the route gives up after 300 ms.
        const store = yield* StateStore.sqlite(path, { retry: StateStore.Patience.untilDone })
        const deliveries = new Deliveries()
        const doorbell = new Doorbell({ visibilityDelay: 50, debounce: 10 }, yield* Effect.scope)
        const port = yield* HttpServer.serve(
          Ingress.routes({
            settings: {
              path: "/webhooks/workos",
              secrets: [Redacted.make(secret)],
              tolerance: 180_000,
              allowedSources: undefined,
              trustedProxies: [],
              visibilityDelay: 50,
              debounce: 10,
              overdueAfter: 60_000
            },
            doorbell,
            deliveries,
            types: undefined,
            organizationId: undefined,
            record: (id, type, at) =>
              store.recordWebhook(id, type, at).pipe(Effect.timeout("300 millis"))
          }),
          { host: "127.0.0.1", port: 0 }
        )
        const url = `http://127.0.0.1:${port}/webhooks/workos`
        const body = JSON.stringify({ id: "event_01LOCKED", event: "user.created", data: {} })
        const other = new DatabaseSync(path)
        other.exec("BEGIN IMMEDIATE")
        expect(yield* post(url, body)).toBe(503)
        expect(deliveries.pendingCount()).toBe(0)
        other.exec("ROLLBACK")
        other.close()
        // WorkOS sends it again: news again, kept, pending.
        expect(yield* post(url, body)).toBe(200)
        expect(deliveries.pendingCount()).toBe(1)
        expect((yield* store.pendingWebhooks()).map((w) => w.eventId)).toEqual(["event_01LOCKED"])
        expect(yield* post(url, body)).toBe(200)
        expect((yield* store.pendingWebhooks()).length).toBe(1)
      }).pipe(Effect.scoped)
  )
})
