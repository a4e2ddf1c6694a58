/**
 * What an operator sees of a running relay:
 * - logs: logfmt on a terminal, JSON lines otherwise (or as configured), at a level;
 * - `/healthz` (the process is up), `/readyz` (it holds the lease and every sink
 *   runs), `/metrics` (Prometheus text) on the configured address;
 * - on a terminal, a live summary line: events/s and lag per sink.
 *
 * The metrics are effect `Metric`s (`Metrics.ts`), rendered by `PrometheusMetrics`.
 */
import type { CatchUp } from "@workos-relay/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import { PrometheusMetrics } from "effect/observability"
import type { Routes } from "./http/Server.ts"
import { formatMillis } from "./internal/Text.ts"
import type { Metrics } from "./Metrics.ts"

export {
  type LaneLabels,
  latencyBuckets,
  Metrics,
  SinkMetrics,
  type SinkState,
  SourceMetrics
} from "./Metrics.ts"

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
      // The runner's registry (its metrics, and a sink's recorded during the run), then
      // any recorded elsewhere (the process's default registry).
      Effect.map(Effect.context(), (context) =>
        HttpServerResponse.text(
          metrics.render() +
            (Context.get(context, Metric.MetricRegistry) === metrics.registry
              ? ""
              : PrometheusMetrics.formatUnsafe(context)),
          { contentType: "text/plain; version=0.0.4" }
        )
      )
    )
  )

// ---------------------------------------------------------------------------
// Logs

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
