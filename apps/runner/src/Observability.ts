/**
 * What an operator sees of a running relay:
 * - logs: logfmt on a terminal, JSON lines otherwise (or as configured), at a level;
 * - `/healthz` (the process is up), `/readyz` (it holds the lease and every sink
 *   runs), `/metrics` (Prometheus text) on the configured address;
 * - on a terminal, a live summary line: events/s and lag per sink.
 *
 * The metrics are plain counters updated on the hot path (a Map lookup and an
 * add), rendered on scrape; that keeps the pipeline's cost per event tiny.
 */
import { CatchUp, type RequestBudget } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import * as Layer from "effect/Layer"
import { PrometheusMetrics } from "effect/observability"
import type { Routes } from "./http/Server.ts"
import { formatMillis } from "./internal/Text.ts"
import type { Deliveries } from "./webhooks/Deliveries.ts"

// ---------------------------------------------------------------------------
// Metrics

/** Upper bounds (seconds) of the delivery latency histogram. */
export const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

export interface SinkMetrics {
  delivered: number
  retried: number
  deadLettered: number
  filtered: number
  batches: number
  /** Events fetched but not yet done with, as far as the lane knows. */
  lagEvents: number
  /** How old the newest event done with is, at the time it was done (ms). */
  lagMs: number
  /** When the checkpoint last moved (ms since the epoch); 0 before the first commit. */
  checkpointAt: number
  /** How much of WorkOS's retention the sink's unread events have used (0 when caught up). */
  retentionUsed: number
  cursor: string | undefined
  /** `interrupted`: stopped at the shutdown deadline with a batch still in flight. */
  state: "starting" | "running" | "detached" | "failed" | "stopped" | "interrupted"
  error: string | undefined
  latencyCounts: Array<number>
  latencySum: number
  latencyCount: number
}

/** How many ids of events that broke the spec `Metrics` keeps, to count each once. */
const mismatchIdsKept = 10_000

/** A label value in the Prometheus text format: backslash, double quote and newline escaped. */
const escapeLabelValue = (value: string): string =>
  value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`))

export class Metrics {
  fetched = 0
  /** The parallel catch-up of the source's readers (see core's `CatchUp`). */
  readonly catchUp = new CatchUp.Progress()
  /** Possible gaps found (a cursor older than WorkOS keeps events), and the last one. */
  gaps = 0
  lastGap: string | undefined
  ready = false
  leaseHeld = false
  /** The webhook doorbell's counts, rendered after the rest when webhooks are on. */
  webhooks: Deliveries | undefined
  /** The API key's request budget the source reads through (the console shows its use). */
  budget: RequestBudget.RequestBudget | undefined
  readonly sinks = new Map<string, SinkMetrics>()
  readonly startedAt = Date.now()
  /** Events that broke the spec, by type: each counted once, however many sinks take it. */
  readonly specMismatches = new Map<string, number>()
  /** The ids counted in `specMismatches`, the latest `mismatchIdsKept` of them. */
  private readonly mismatchIds = new Set<string>()

  /**
   * Counts an event that broke the spec, once per id (every lane that takes it says
   * so). True when it is the first of its type, to be told once. The ids kept are
   * bounded: a lane more than `mismatchIdsKept` such events behind the others could
   * count one again.
   */
  specMismatch(id: string, type: string): boolean {
    if (this.mismatchIds.has(id)) return false
    this.mismatchIds.add(id)
    if (this.mismatchIds.size > mismatchIdsKept)
      this.mismatchIds.delete(this.mismatchIds.values().next().value!)
    const count = this.specMismatches.get(type) ?? 0
    this.specMismatches.set(type, count + 1)
    return count === 0
  }

  sink(name: string): SinkMetrics {
    let m = this.sinks.get(name)
    if (m === undefined) {
      m = {
        delivered: 0,
        retried: 0,
        deadLettered: 0,
        filtered: 0,
        batches: 0,
        lagEvents: 0,
        lagMs: 0,
        checkpointAt: 0,
        retentionUsed: 0,
        cursor: undefined,
        state: "starting",
        error: undefined,
        latencyCounts: latencyBuckets.map(() => 0),
        latencySum: 0,
        latencyCount: 0
      }
      this.sinks.set(name, m)
    }
    return m
  }

  observeLatency(name: string, seconds: number, events: number): void {
    const m = this.sink(name)
    for (let i = 0; i < latencyBuckets.length; i++)
      if (seconds <= latencyBuckets[i]!) m.latencyCounts[i]! += events
    m.latencySum += seconds * events
    m.latencyCount += events
  }

  /** Prometheus text exposition format. */
  render(now = Date.now()): string {
    const out: Array<string> = []
    const metric = (name: string, type: string, help: string) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    // Escaped as the text format asks (not replaced: "a\"b" and "a_b" stay two sinks).
    const label = (sink: string) => `sink="${escapeLabelValue(sink)}"`
    metric("workos_relay_events_fetched_total", "counter", "Events fetched from WorkOS.")
    out.push(`workos_relay_events_fetched_total ${this.fetched}`)
    const c = this.catchUp
    metric(
      "workos_relay_catch_up_active",
      "gauge",
      "1 while a reader catches up in parallel time slices."
    )
    out.push(`workos_relay_catch_up_active ${c.active ? 1 : 0}`)
    metric(
      "workos_relay_catch_up_slices_done",
      "gauge",
      "Slices of the current catch-up handed on."
    )
    out.push(`workos_relay_catch_up_slices_done ${c.slicesDone}`)
    metric(
      "workos_relay_catch_up_slices_total",
      "gauge",
      "Slices the current catch-up is expected to take."
    )
    out.push(`workos_relay_catch_up_slices_total ${c.slicesTotal}`)
    metric(
      "workos_relay_catch_up_events_per_second",
      "gauge",
      "Events handed on per second by the current catch-up."
    )
    out.push(
      `workos_relay_catch_up_events_per_second ${c.active ? c.eventsPerSecond(now).toFixed(1) : 0}`
    )
    metric(
      "workos_relay_catch_up_seconds_left",
      "gauge",
      "Estimated seconds until the current catch-up is done (-1: unknown)."
    )
    const left = c.timeLeftMs(now)
    out.push(
      `workos_relay_catch_up_seconds_left ${left === undefined ? -1 : (left / 1000).toFixed(0)}`
    )
    metric(
      "workos_relay_source_gaps_total",
      "counter",
      "Times a cursor older than source.retention was read from: events may be lost."
    )
    out.push(`workos_relay_source_gaps_total ${this.gaps}`)
    metric(
      "workos_relay_spec_mismatches_total",
      "counter",
      "Events with an id and a type whose payload does not match the spec, by type, each counted once: raw sinks get them as sent, typed sinks dead-letter them."
    )
    for (const [type, n] of this.specMismatches)
      out.push(`workos_relay_spec_mismatches_total{type="${escapeLabelValue(type)}"} ${n}`)
    const perSink = (
      name: string,
      type: string,
      help: string,
      value: (m: SinkMetrics) => number
    ) => {
      metric(name, type, help)
      for (const [sink, m] of this.sinks) out.push(`${name}{${label(sink)}} ${value(m)}`)
    }
    perSink(
      "workos_relay_events_delivered_total",
      "counter",
      "Events a sink accepted.",
      (m) => m.delivered
    )
    perSink(
      "workos_relay_events_retried_total",
      "counter",
      "Event deliveries retried.",
      (m) => m.retried
    )
    perSink(
      "workos_relay_events_dead_lettered_total",
      "counter",
      "Events dead-lettered.",
      (m) => m.deadLettered
    )
    perSink(
      "workos_relay_events_filtered_total",
      "counter",
      "Events a sink's filters left out.",
      (m) => m.filtered
    )
    perSink(
      "workos_relay_lag_events",
      "gauge",
      "Events fetched and not yet done with by the sink.",
      (m) => m.lagEvents
    )
    perSink(
      "workos_relay_lag_seconds",
      "gauge",
      "Age of the newest event the sink is done with, when done.",
      (m) => m.lagMs / 1000
    )
    perSink(
      "workos_relay_checkpoint_age_seconds",
      "gauge",
      "Time since the sink's checkpoint last moved.",
      (m) => (m.checkpointAt === 0 ? 0 : (now - m.checkpointAt) / 1000)
    )
    perSink(
      "workos_relay_checkpoint_retention_ratio",
      "gauge",
      "Age of the oldest event the sink has still to read, over source.retention (0 when caught up; events are lost past 1).",
      (m) => m.retentionUsed
    )
    perSink(
      "workos_relay_sink_up",
      "gauge",
      "1 while the sink's lane runs, 0 once it stopped.",
      (m) => (m.state === "failed" || m.state === "stopped" || m.state === "interrupted" ? 0 : 1)
    )
    metric(
      "workos_relay_delivery_latency_seconds",
      "histogram",
      "Time from fetch to a sink accepting the event."
    )
    for (const [sink, m] of this.sinks) {
      for (let i = 0; i < latencyBuckets.length; i++) {
        out.push(
          `workos_relay_delivery_latency_seconds_bucket{${label(sink)},le="${latencyBuckets[i]}"} ${m.latencyCounts[i]}`
        )
      }
      out.push(
        `workos_relay_delivery_latency_seconds_bucket{${label(sink)},le="+Inf"} ${m.latencyCount}`
      )
      out.push(`workos_relay_delivery_latency_seconds_sum{${label(sink)}} ${m.latencySum}`)
      out.push(`workos_relay_delivery_latency_seconds_count{${label(sink)}} ${m.latencyCount}`)
    }
    metric("workos_relay_lease_held", "gauge", "1 while this runner holds the lease.")
    out.push(`workos_relay_lease_held ${this.leaseHeld ? 1 : 0}`)
    if (this.webhooks !== undefined) out.push(...this.webhooks.render())
    return `${out.join("\n")}\n`
  }
}

// ---------------------------------------------------------------------------
// Health and metrics over HTTP

/** The paths `routes` serves. */
export const paths = ["/healthz", "/readyz", "/metrics"] as const

/** /readyz: 200 once the lease is held and no sink failed; 503 saying why otherwise. */
const readiness = (metrics: Metrics) =>
  Effect.sync(() => {
    const failed = [...metrics.sinks].filter(([, m]) => m.state === "failed").map(([n]) => n)
    const ready = metrics.ready && failed.length === 0
    return HttpServerResponse.text(
      ready
        ? "ready\n"
        : !metrics.ready
          ? "not ready: waiting for the lease\n"
          : `not ready: sinks failed: ${failed.join(", ")}\n`,
      { status: ready ? 200 : 503, contentType: "text/plain" }
    )
  })

/** /healthz, /readyz and /metrics, as routes of the runner's HTTP server (`http/Server.ts`). */
export const routes = (metrics: Metrics): Routes =>
  Layer.mergeAll(
    HttpRouter.add("*", "/healthz", HttpServerResponse.text("ok\n", { contentType: "text/plain" })),
    HttpRouter.add("*", "/readyz", readiness(metrics)),
    HttpRouter.add(
      "*",
      "/metrics",
      // The runner's own metrics, then those recorded as effect `Metric`s (a sink's).
      PrometheusMetrics.format().pipe(
        Effect.map((recorded) =>
          HttpServerResponse.text(metrics.render() + recorded, {
            contentType: "text/plain; version=0.0.4"
          })
        )
      )
    )
  )

// ---------------------------------------------------------------------------
// Logs: in ./Logging.ts (the CLI loads it on every start; this module is heavier)

export { clearLine, logLayer } from "./Logging.ts"

// ---------------------------------------------------------------------------
// The live summary line

/** `events/s` since the last call, per sink, plus lag: one line, redrawn in place on a terminal. */
export const summaryLine = (
  metrics: Metrics,
  previous: Map<string, number>,
  elapsedMs: number
): string => {
  const parts: Array<string> = []
  for (const [name, m] of metrics.sinks) {
    const done = m.delivered + m.deadLettered + m.filtered
    const rate = ((done - (previous.get(name) ?? done)) * 1000) / Math.max(1, elapsedMs)
    previous.set(name, done)
    // A stopped sink has no rate or lag to speak of; its error is in the log and the summary.
    if (m.state === "failed") {
      parts.push(`${name}: FAILED`)
      continue
    }
    const state = m.state === "detached" ? " (catching up)" : ""
    parts.push(
      `${name}: ${rate.toFixed(0)}/s lag ${m.lagEvents} ev ${formatMillis(m.lagMs)}${m.deadLettered > 0 ? ` dlq ${m.deadLettered}` : ""}${state}`
    )
  }
  return `fetched ${metrics.fetched} | ${parts.join(" | ")}${catchUpText(metrics.catchUp)}`
}

/** A catch-up in slices as the live line shows it: slices, events/s, time left. */
export const catchUpText = (progress: CatchUp.Progress, now = Date.now()): string => {
  if (!progress.active) return ""
  const left = progress.timeLeftMs(now)
  return ` | catching up: slices ${progress.slicesDone}/${progress.slicesTotal} (${progress.slicesOpen} open), ${progress.eventsPerSecond(now).toFixed(0)} ev/s, ${left === undefined ? "time left unknown" : `~${formatMillis(left)} left`}`
}
