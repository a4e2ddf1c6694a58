import * as Net from "node:net"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { WorkOS as WorkOSNode } from "@workos-inc/node"
import { Webhook } from "@workos-relay/core"
import { WorkOSStandIn, WorkOSWebhooks } from "@workos-relay/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Config from "../src/Config.ts"
import { Metrics } from "../src/Observability.ts"
import * as Runner from "../src/Runner.ts"
import { clientAddress } from "../src/webhooks/Ingress.ts"
import { type Registered, register, webhookTypes } from "../src/webhooks/Register.ts"
import { fixtures, recorded, tempDir, waitUntil } from "./helpers.ts"

const secret = "whsec_current"
const sdk = new WorkOSNode("sk_test_webhooks")

/** The relay on a stand-in, polling once an hour: only the doorbell makes it read again. */
const startRelay = (
  standIn: WorkOSStandIn.StandIn,
  webhooks: Record<string, unknown> | undefined,
  pollInterval = "1h"
) =>
  Effect.gen(function* () {
    const dir = tempDir()
    const config = yield* Config.decode(
      {
        source: {
          type: "workos",
          apiKey: standIn.apiKey,
          baseUrl: standIn.url,
          start: "earliest",
          pollInterval
        },
        state: { sqlite: Path.join(dir, "state.db") },
        http: { address: "127.0.0.1:0" },
        ...(webhooks === undefined ? {} : { webhooks }),
        shutdownTimeout: "2s",
        sinks: { rec: { module: "./recording-sink.mjs", path: Path.join(dir, "rec.log") } }
      },
      { file: "test", baseDir: fixtures, env: {} }
    )
    const stop = yield* Deferred.make<void>()
    const metrics = new Metrics()
    const listening = yield* Deferred.make<number>()
    const running = yield* Runner.run(config, {
      stop,
      metrics,
      onListening: (port) => Deferred.doneUnsafe(listening, Effect.succeed(port))
    }).pipe(Effect.forkScoped)
    const port = yield* Deferred.await(listening)
    const log = Path.join(dir, "rec.log")
    yield* waitUntil("the seeded events", () => recorded(log).length === standIn.size())
    return {
      url: `http://127.0.0.1:${port}/webhooks/workos`,
      port,
      metrics,
      log,
      stop: Deferred.succeed(stop, undefined).pipe(Effect.andThen(Fiber.join(running)))
    }
  })

const post = (url: string, body: string, signature: string | undefined, headers = {}) =>
  Effect.promise(() =>
    fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(signature === undefined ? {} : { "workos-signature": signature }),
        ...headers
      },
      body
    }).then(async (r) => ({ status: r.status, text: await r.text() }))
  )

const eventsRequests = (standIn: WorkOSStandIn.StandIn) =>
  standIn.requests.filter((r) => r.url.pathname === "/events").length

describe("webhook doorbell", () => {
  it.live(
    "a webhook signed by WorkOS's SDK wakes the reader: the event is read at once, from the Events API",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 20 })
        const relay = yield* startRelay(standIn, {
          secrets: ["whsec_old", secret],
          visibilityDelay: "200ms",
          debounce: "50ms"
        })
        const before = eventsRequests(standIn)
        const [event] = standIn.appendGenerated(1)
        const body = JSON.stringify(event)
        const t = Date.now()
        const hex = yield* Effect.promise(() => sdk.webhooks.computeSignature(t, body, secret))
        expect(yield* post(relay.url, body, `t=${t}, v1=${hex}`)).toEqual({
          status: 200,
          text: "ok\n"
        })
        yield* waitUntil("the event", () => recorded(relay.log).length === 21)
        expect(recorded(relay.log)).toEqual(standIn.events().map((e) => e.id))
        // A poll now and one after the visibility delay; no more.
        yield* Effect.sleep("400 millis")
        expect(eventsRequests(standIn) - before).toBe(2)
        // The same delivery again (a replay within the tolerance, or WorkOS retrying): 2xx, no poll.
        expect((yield* post(relay.url, body, `t=${t}, v1=${hex}`)).status).toBe(200)
        yield* Effect.sleep("400 millis")
        expect(eventsRequests(standIn) - before).toBe(2)
        const metrics = relay.metrics.render()
        expect(metrics).toContain("workos_relay_webhooks_accepted_total 2")
        expect(metrics).toContain("workos_relay_webhooks_duplicates_total 1")
        expect(metrics).toContain("workos_relay_webhook_lead_seconds_count 1")
        expect(metrics).toContain("workos_relay_webhooks_pending 0")
        yield* relay.stop
      }).pipe(Effect.scoped)
  )

  it.live("tampered, stale, unsigned, wrong secret: refused, counted, nothing read", () =>
    Effect.gen(function* () {
      const standIn = yield* WorkOSStandIn.make({ events: 5 })
      const relay = yield* startRelay(standIn, { secrets: [secret], tolerance: "1m" })
      const before = eventsRequests(standIn)
      const [event] = standIn.appendGenerated(1)
      const body = JSON.stringify(event)
      const signed = yield* Webhook.sign({ payload: body, secret })
      // One byte changed after signing.
      expect((yield* post(relay.url, body.replace("}", " }"), signed)).status).toBe(401)
      const stale = yield* Webhook.sign({ payload: body, secret, timestamp: Date.now() - 120_000 })
      const staleAnswer = yield* post(relay.url, body, stale)
      expect(staleAnswer.status).toBe(401)
      expect(staleAnswer.text).toContain("beyond the tolerance")
      expect((yield* post(relay.url, body, undefined)).status).toBe(400)
      expect((yield* post(relay.url, body, "t=1, v1=zz")).status).toBe(400)
      const wrong = yield* Webhook.sign({ payload: body, secret: "whsec_other" })
      expect((yield* post(relay.url, body, wrong)).status).toBe(401)
      // Signed but not an event.
      const notEvent = yield* Webhook.sign({ payload: "[]", secret })
      expect((yield* post(relay.url, "[]", notEvent)).status).toBe(400)
      // A body past 1 MiB is not read.
      const huge = `{"id":"event_x","event":"user.created","pad":"${"x".repeat(2 ** 21)}"}`
      const hugeSigned = yield* Webhook.sign({ payload: huge, secret })
      expect((yield* post(relay.url, huge, hugeSigned)).status).toBe(400)
      // Only POST on the path.
      const get = yield* Effect.promise(() => fetch(relay.url).then((r) => r.status))
      expect(get).toBe(404)
      yield* Effect.sleep("300 millis")
      expect(eventsRequests(standIn)).toBe(before)
      const text = relay.metrics.render()
      expect(text).toContain('workos_relay_webhooks_rejected_total{reason="signature"} 2')
      expect(text).toContain('workos_relay_webhooks_rejected_total{reason="stale"} 1')
      expect(text).toContain('workos_relay_webhooks_rejected_total{reason="header"} 2')
      expect(text).toContain('workos_relay_webhooks_rejected_total{reason="body"} 2')
      // Health and metrics are served as before on the same server.
      const health = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${relay.port}/healthz`).then((r) => r.text())
      )
      expect(health).toBe("ok\n")
      yield* relay.stop
    }).pipe(Effect.scoped)
  )

  it.live("source addresses: refused from elsewhere; behind a trusted proxy, X-Forwarded-For", () =>
    Effect.gen(function* () {
      const standIn = yield* WorkOSStandIn.make({ events: 5 })
      const relay = yield* startRelay(standIn, {
        secrets: [secret],
        allowedSources: "workos",
        trustedProxies: ["127.0.0.1"]
      })
      const [event] = standIn.appendGenerated(1)
      const body = JSON.stringify(event)
      const signed = yield* Webhook.sign({ payload: body, secret })
      expect((yield* post(relay.url, body, signed)).status).toBe(403)
      // A client cannot forge its way in by prepending a WorkOS address.
      const forged = { "x-forwarded-for": "52.1.251.34, 198.51.100.7" }
      expect((yield* post(relay.url, body, signed, forged)).status).toBe(403)
      const viaProxy = { "x-forwarded-for": "52.1.251.34" }
      expect((yield* post(relay.url, body, signed, viaProxy)).status).toBe(200)
      yield* waitUntil("the event", () => recorded(relay.log).length === 6)
      expect(relay.metrics.render()).toContain(
        'workos_relay_webhooks_rejected_total{reason="source"} 2'
      )
      yield* relay.stop
    }).pipe(Effect.scoped)
  )

  it.live("a burst of twenty webhooks costs one or two polls", () =>
    Effect.gen(function* () {
      const standIn = yield* WorkOSStandIn.make({ events: 5 })
      const relay = yield* startRelay(standIn, {
        secrets: [secret],
        visibilityDelay: "1s",
        debounce: "1s"
      })
      const before = eventsRequests(standIn)
      const burst = standIn.appendGenerated(20)
      yield* Effect.forEach(
        burst,
        (event) =>
          Effect.gen(function* () {
            const body = JSON.stringify(event)
            return yield* post(relay.url, body, yield* Webhook.sign({ payload: body, secret }))
          }),
        { concurrency: 20 }
      )
      yield* waitUntil("the burst", () => recorded(relay.log).length === 25)
      yield* Effect.sleep("2500 millis")
      // Rings within the debounce share their polls: with the debounce covering the
      // visibility delay, the burst's first ring costs one poll and the rest one more.
      const polls = eventsRequests(standIn) - before
      expect(polls).toBeGreaterThanOrEqual(1)
      expect(polls).toBeLessThanOrEqual(2)
      expect(recorded(relay.log)).toEqual(standIn.events().map((e) => e.id))
      yield* relay.stop
    }).pipe(Effect.scoped)
  )

  it("the client address: the peer, or the right-most untrusted X-Forwarded-For hop", () => {
    const trusted = new Net.BlockList()
    trusted.addSubnet("10.0.0.0", 8, "ipv4")
    expect(clientAddress("::ffff:1.2.3.4", "5.6.7.8", trusted)).toBe("1.2.3.4")
    expect(clientAddress("10.0.0.2", "9.9.9.9, 5.6.7.8, 10.0.0.3", trusted)).toBe("5.6.7.8")
    expect(clientAddress("10.0.0.2", undefined, trusted)).toBe("10.0.0.2")
  })

  it.live(
    "the doorbell never changes what is delivered: lost, duplicated, late and early webhooks",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({
          events: 10,
          // Webhooks arrive before their event is readable ("early").
          quirks: { visibilityDelayMs: 150 }
        })
        // Polling still runs (300 ms) as the safety net for lost webhooks.
        const relay = yield* startRelay(
          standIn,
          { secrets: [secret], visibilityDelay: "200ms", debounce: "20ms" },
          "300ms"
        )
        const sender = WorkOSWebhooks.sendTo(standIn, {
          url: relay.url,
          secret,
          lose: 0.3,
          duplicate: 0.3,
          maxDelayMs: 400,
          seed: 7
        })
        for (let i = 0; i < 8; i++) {
          standIn.appendGenerated(1 + (i % 3))
          yield* Effect.sleep(`${30 * (i % 4)} millis`)
        }
        const all = standIn.events().map((e) => e.id)
        yield* waitUntil("every event", () => recorded(relay.log).length >= all.length)
        yield* Effect.promise(() => sender.idle())
        yield* Effect.sleep("500 millis")
        // Same ids, same order, each once: counted, not deduplicated.
        expect(recorded(relay.log)).toEqual(all)
        expect(sender.lost.length).toBeGreaterThan(0)
        expect(sender.deliveries.every((d) => d.status === 200)).toBe(true)
        expect(relay.metrics.render()).toContain("workos_relay_webhooks_pending 0")
        yield* relay.stop
      }).pipe(Effect.scoped)
  )
})

describe("webhooks config", () => {
  it.effect("validate names what is wrong and where", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Config.decode(
          {
            source: { type: "workos", apiKey: "sk_test" },
            webhooks: {
              secrets: [],
              path: "/metrics",
              allowedSources: ["10.0.0.0/33", "52.1.251.34"],
              trustedProxies: ["proxy.local"],
              tolerance: "soon"
            },
            sinks: { out: { type: "console" } }
          },
          { file: "relay.yaml", baseDir: fixtures, env: {} }
        )
      )
      const problems = error.problems.map((p) => `${p.path}: ${p.message}`)
      expect(problems).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^webhooks: webhooks need the HTTP server: set http.address/),
          expect.stringMatching(/^webhooks.secrets: no secret/),
          "webhooks.path: /metrics is the runner's own; choose another",
          'webhooks.allowedSources[0]: expected an IP address or a CIDR range such as "10.0.0.0/8", got "10.0.0.0/33"',
          'webhooks.trustedProxies[0]: expected an IP address or a CIDR range such as "10.0.0.0/8", got "proxy.local"',
          expect.stringMatching(/^webhooks.tolerance: /)
        ])
      )
      expect(problems.some((p) => p.startsWith("webhooks.allowedSources[1]"))).toBe(false)
    })
  )

  it.effect("defaults: path, tolerance, WorkOS's addresses by name", () =>
    Effect.gen(function* () {
      const config = yield* Config.decode(
        {
          source: { type: "workos", apiKey: "sk_test" },
          http: { address: "127.0.0.1:0" },
          webhooks: { secrets: ["whsec_a"], allowedSources: "workos" },
          sinks: { out: { type: "console" } }
        },
        { file: "relay.yaml", baseDir: fixtures, env: {} }
      )
      expect(config.webhooks?.path).toBe("/webhooks/workos")
      expect(config.webhooks?.tolerance).toBe(180_000)
      expect(config.webhooks?.allowedSources).toHaveLength(9)
      expect(String(config.webhooks?.secrets[0])).not.toContain("whsec_a")
    })
  )
})

describe("webhooks register", () => {
  it.live(
    "creates the endpoint on the stand-in, then updates it; the stand-in's signed webhooks ring the relay",
    () =>
      Effect.gen(function* () {
        const standIn = yield* WorkOSStandIn.make({ events: 5 })
        const events = webhookTypes(undefined)
        expect(events).not.toContain("vault.data.read")
        expect(events).toContain("user.created")
        // The relay needs its port before the endpoint exists: start it with a placeholder secret list.
        let registered: Registered | undefined
        const relay = yield* Effect.gen(function* () {
          const first = yield* register({
            baseUrl: standIn.url,
            apiKey: Redacted.make(standIn.apiKey),
            url: "http://127.0.0.1:1/webhooks/workos",
            events
          })
          registered = first
          return yield* startRelay(standIn, {
            secrets: [first.secret!],
            visibilityDelay: "100ms",
            debounce: "20ms"
          })
        })
        expect(registered?.action).toBe("created")
        expect(registered?.secret).toMatch(/^whsec_/)
        // Registering again for another URL creates; for the same URL updates.
        const again = yield* register({
          baseUrl: standIn.url,
          apiKey: Redacted.make(standIn.apiKey),
          url: "http://127.0.0.1:1/webhooks/workos",
          events: ["user.created"]
        })
        expect(again).toMatchObject({ action: "updated", id: registered!.id, secret: undefined })
        expect(standIn.webhookEndpoints.list()).toHaveLength(1)
        // Point it at the relay (as WorkOS's dashboard would) with every type again.
        const endpoint = standIn.webhookEndpoints.list()[0]!
        const moved = yield* Effect.promise(() =>
          fetch(`${standIn.url}/webhook_endpoints/${endpoint.id}`, {
            method: "PATCH",
            headers: {
              authorization: `Bearer ${standIn.apiKey}`,
              "content-type": "application/json"
            },
            body: JSON.stringify({ endpoint_url: relay.url, events })
          }).then((r) => r.status)
        )
        expect(moved).toBe(200)
        standIn.appendGenerated(3)
        yield* waitUntil("the new events", () => recorded(relay.log).length === 8)
        yield* Effect.promise(() => standIn.webhookEndpoints.senders.get(endpoint.id)!.idle())
        expect(relay.metrics.render()).toMatch(/workos_relay_webhooks_accepted_total [1-9]/)
        // WorkOS's refusals come back as what they say.
        const refused = yield* Effect.flip(
          register({
            baseUrl: standIn.url,
            apiKey: Redacted.make(standIn.apiKey),
            url: "http://127.0.0.1:2/x",
            events: ["no.such.type"]
          })
        )
        expect(refused.message).toContain("422")
        expect(refused.message).toContain("no.such.type")
        yield* relay.stop
      }).pipe(Effect.scoped)
  )
})
