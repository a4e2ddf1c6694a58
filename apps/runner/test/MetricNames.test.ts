/**
 * `/metrics` keeps its names: the families (HELP and TYPE lines) and the series (name
 * and labels, values aside) that a busy runner serves, against the list the
 * hand-written renderer served before the metrics became effect `Metric`s
 * (`fixtures/metrics/names.txt`, written from aed6b67's output).
 */

import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Metrics } from "../src/Observability.ts"
import { Deliveries } from "../src/webhooks/Deliveries.ts"

const fixture = Path.join(import.meta.dirname, "fixtures", "metrics", "names.txt")
// Written from aed6b67's `Deliveries.render()`.
const webhookFixture = Path.join(import.meta.dirname, "fixtures", "metrics", "names-webhooks.txt")

/** A runner with every metric in use: two sinks (one with a name to escape), a spec mismatch, latencies. */
const busy = (): Metrics => {
  const metrics = new Metrics()
  metrics.fetched = 120
  metrics.gaps = 1
  metrics.leaseHeld = true
  for (const name of ["audit", 'chat"ops']) {
    const m = metrics.sink(name)
    m.delivered = 100
    m.retried = 2
    m.deadLettered = 1
    m.filtered = 19
    m.lagEvents = 5
    m.lagMs = 1500
    m.checkpointAt = Date.now() - 2000
    m.retentionUsed = 0.25
    m.state = "running"
    metrics.observeLatency(name, 0.02, 60)
    metrics.observeLatency(name, 3, 40)
  }
  metrics.specMismatch("event_1", "role.created")
  metrics.specMismatch("event_2", 'odd"type')
  return metrics
}

/** The lines that name things: HELP and TYPE lines whole, series without their value. */
export const names = (text: string): Array<string> =>
  text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => (line.startsWith("#") ? line : line.slice(0, line.lastIndexOf(" "))))
    .sort()

describe("/metrics names", () => {
  it("the families, HELP and TYPE lines, series names and labels are those served before", () => {
    const served = names(busy().render())
    if (process.env.WRITE_METRIC_NAMES === "1") Fs.writeFileSync(fixture, `${served.join("\n")}\n`)
    const before = Fs.readFileSync(fixture, "utf8").trimEnd().split("\n")
    expect(served).toEqual(before)
  })

  it("with webhooks on, their families and series too; every reason of a refusal is served from 0", () => {
    const deliveries = new Deliveries()
    deliveries.received("event_1", "user.created", 1000)
    deliveries.received("event_1", "user.created", 1001)
    deliveries.received("event_2", "user.created", 1002)
    deliveries.reject("signature")
    deliveries.read([{ _tag: "Event", event: { id: "event_1" } } as any], 1500)
    deliveries.overdue(10, 5000)
    const metrics = new Metrics()
    metrics.webhooks = deliveries
    const text = metrics.render()
    const served = names(text).filter((line) => line.includes("webhook"))
    const before = Fs.readFileSync(webhookFixture, "utf8").trimEnd().split("\n")
    const others = ["header", "stale", "source", "body"].map(
      (reason) => `workos_relay_webhooks_rejected_total{reason="${reason}"}`
    )
    expect(served).toEqual([...before, ...others].sort())
    expect(text).toMatch(/^workos_relay_webhooks_accepted_total 3$/m)
    expect(text).toMatch(/^workos_relay_webhooks_duplicates_total 1$/m)
    expect(text).toMatch(/^workos_relay_webhooks_rejected_total\{reason="signature"\} 1$/m)
    expect(text).toMatch(/^workos_relay_webhooks_rejected_total\{reason="stale"\} 0$/m)
    expect(text).toMatch(/^workos_relay_webhooks_pending 1$/m)
    expect(text).toMatch(/^workos_relay_webhooks_overdue_total 1$/m)
    expect(text).toMatch(/^workos_relay_webhook_lead_seconds_sum 0.5$/m)
    expect(text).toMatch(/^workos_relay_webhook_lead_seconds_count 1$/m)
  })
})
