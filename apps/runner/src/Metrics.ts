/**
 * The runner's metrics as effect `Metric`s, in a registry of their own: `/metrics`
 * renders them with `PrometheusMetrics`, and the OTLP exporter (`Telemetry.ts`)
 * sends the same registry.
 *
 * Counters, the lag and retention gauges and the latency histogram are updated where
 * things happen, a batch or a page at a time (never per event: an update is a few Map
 * lookups). Gauges that are a view of plain state (a sink's state, the time since its
 * checkpoint moved, the lease, a catch-up's progress) are registered with a `get`
 * that reads that state when the registry is read, so they are never stale.
 *
 * What is not a number (a cursor, a state, an error) stays plain state, read by
 * `status`, the console and the live line.
 *
 * One registry per `Metrics`: two runners in one process (tests, `replay` beside a
 * `run`) count apart.
 */
import { CatchUp, type RequestBudget } from "@workos-relay/core"
import * as Context from "effect/Context"
import * as Metric from "effect/Metric"
import { PrometheusMetrics } from "effect/observability"
import type { Deliveries, Rejection } from "./webhooks/Deliveries.ts"

/** Upper bounds (seconds) of the delivery latency histogram. */
export const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/** How many ids of events that broke the spec `Metrics` keeps, to count each once. */
const mismatchIdsKept = 10_000

export type SinkState = "starting" | "running" | "detached" | "failed" | "stopped" | "interrupted"

const described = {
  fetched: ["workos_relay_events_fetched_total", "Events fetched from WorkOS."],
  catchUpActive: [
    "workos_relay_catch_up_active",
    "1 while a reader catches up in parallel time slices."
  ],
  slicesDone: ["workos_relay_catch_up_slices_done", "Slices of the current catch-up handed on."],
  slicesTotal: [
    "workos_relay_catch_up_slices_total",
    "Slices the current catch-up is expected to take."
  ],
  catchUpRate: [
    "workos_relay_catch_up_events_per_second",
    "Events handed on per second by the current catch-up."
  ],
  catchUpLeft: [
    "workos_relay_catch_up_seconds_left",
    "Estimated seconds until the current catch-up is done (-1: unknown)."
  ],
  gaps: [
    "workos_relay_source_gaps_total",
    "Times a cursor older than source.retention was read from: events may be lost."
  ],
  specMismatches: [
    "workos_relay_spec_mismatches_total",
    "Events with an id and a type whose payload does not match the spec, by type, each counted once: raw sinks get them as sent, typed sinks dead-letter them."
  ],
  delivered: ["workos_relay_events_delivered_total", "Events a sink accepted."],
  retried: ["workos_relay_events_retried_total", "Event deliveries retried."],
  deadLettered: ["workos_relay_events_dead_lettered_total", "Events dead-lettered."],
  filtered: ["workos_relay_events_filtered_total", "Events a sink's filters left out."],
  lagEvents: ["workos_relay_lag_events", "Events fetched and not yet done with by the sink."],
  lagSeconds: [
    "workos_relay_lag_seconds",
    "Age of the newest event the sink is done with, when done."
  ],
  checkpointAge: [
    "workos_relay_checkpoint_age_seconds",
    "Time since the sink's checkpoint last moved."
  ],
  retention: [
    "workos_relay_checkpoint_retention_ratio",
    "Age of the oldest event the sink has still to read, over source.retention (0 when caught up; events are lost past 1)."
  ],
  sinkUp: ["workos_relay_sink_up", "1 while the sink's lane runs, 0 once it stopped."],
  latency: [
    "workos_relay_delivery_latency_seconds",
    "Time from fetch to a sink accepting the event."
  ],
  leaseHeld: ["workos_relay_lease_held", "1 while this runner holds the lease."],
  webhooksAccepted: [
    "workos_relay_webhooks_accepted_total",
    "Webhook deliveries verified and answered 2xx (duplicates included)."
  ],
  webhooksDuplicates: [
    "workos_relay_webhooks_duplicates_total",
    "Verified deliveries of an event already announced or read: no poll asked."
  ],
  webhooksRejected: [
    "workos_relay_webhooks_rejected_total",
    "Webhook deliveries refused, by reason (header, signature, stale, source, body)."
  ],
  webhooksPending: [
    "workos_relay_webhooks_pending",
    "Events announced by webhook that the Events API has not returned yet."
  ],
  webhooksOverdue: [
    "workos_relay_webhooks_overdue_total",
    "Events announced by webhook that the Events API had not returned after webhooks.overdueAfter."
  ],
  webhookLead: [
    "workos_relay_webhook_lead_seconds",
    "How far a webhook ran ahead of the Events API returning its event."
  ]
} as const

const rejections: ReadonlyArray<Rejection> = ["header", "signature", "stale", "source", "body"]

type Name = keyof typeof described
type Attributes = Readonly<Record<string, string>>

const counter = (name: Name, attributes?: Attributes) =>
  Metric.counter(described[name][0], { description: described[name][1], attributes })
const gauge = (name: Name, attributes?: Attributes) =>
  Metric.gauge(described[name][0], { description: described[name][1], attributes })

const ignore = () => {}

/** A counter that reads and writes as a number (`m.delivered += n` still works; `add` is the quick way). */
class Count {
  private readonly metric: Metric.Counter<number>
  private context: Context.Context<never>
  constructor(metric: Metric.Counter<number>, context: Context.Context<never>) {
    this.metric = metric
    this.context = context
    // Registered now, so the series is served at 0 from the start, as before.
    metric.updateUnsafe(0, context)
  }
  add(n: number): void {
    this.metric.updateUnsafe(n, this.context)
  }
  get value(): number {
    return this.metric.valueUnsafe(this.context).count
  }
  set value(n: number) {
    this.add(n - this.value)
  }
  /** Keeps counting, in a registry of its own: the series is no longer served. */
  unserve(): void {
    const value = this.value
    Metric.removeUnsafe(this.metric, this.context)
    this.context = Context.make(Metric.MetricRegistry, new Map())
    this.add(value)
  }
}

/** A gauge set to a value where it changes. */
class Level {
  private readonly metric: Metric.Gauge<number>
  private readonly context: Context.Context<never>
  constructor(metric: Metric.Gauge<number>, context: Context.Context<never>) {
    this.metric = metric
    this.context = context
    metric.updateUnsafe(0, context)
  }
  get value(): number {
    return this.metric.valueUnsafe(this.context).value
  }
  set value(n: number) {
    this.metric.updateUnsafe(n, this.context)
  }
}

/** A gauge whose value is read from plain state whenever the registry is read. */
const observe = (
  context: Context.Context<never>,
  name: Name,
  value: () => number,
  attributes?: Attributes
): void => {
  Metric.registerUnsafe(gauge(name, attributes), context, {
    get: () => ({ value: value() }),
    update: ignore,
    modify: ignore
  })
}

/** A counter whose count is read from plain state whenever the registry is read. */
const observeCount = (
  context: Context.Context<never>,
  name: Name,
  count: () => number,
  attributes?: Attributes
): void => {
  Metric.registerUnsafe(counter(name, attributes), context, {
    get: () => ({ count: count(), incremental: false }),
    update: ignore,
    modify: ignore
  })
}

/**
 * The webhook doorbell's counts (`webhooks/Deliveries.ts` keeps them, as `status`
 * reads them), read when the registry is. Every reason of a refusal is served, 0 until
 * one happens.
 */
const observeWebhooks = (
  context: Context.Context<never>,
  deliveries: () => Deliveries | undefined
) => {
  observeCount(context, "webhooksAccepted", () => deliveries()?.accepted ?? 0)
  observeCount(context, "webhooksDuplicates", () => deliveries()?.duplicates ?? 0)
  for (const reason of rejections)
    observeCount(context, "webhooksRejected", () => deliveries()?.rejected.get(reason) ?? 0, {
      reason
    })
  observe(context, "webhooksPending", () => deliveries()?.pendingCount() ?? 0)
  observeCount(context, "webhooksOverdue", () => deliveries()?.overdueTotal ?? 0)
  // A summary without quantiles: the sum and the count of how far push ran ahead.
  const lead = Metric.summary(described.webhookLead[0], {
    description: described.webhookLead[1],
    maxAge: "1 minute",
    maxSize: 0,
    quantiles: []
  })
  Metric.registerUnsafe(lead, context, {
    get: () => ({
      quantiles: [],
      count: deliveries()?.seen ?? 0,
      min: 0,
      max: 0,
      sum: (deliveries()?.aheadMsSum ?? 0) / 1000
    }),
    update: ignore,
    modify: ignore
  })
}

/**
 * With several sources (or one not named `default`) a lane is a (sink, source): its
 * labels. Without them the lane is the sink, labelled `sink` alone, as with one source.
 */
export interface LaneLabels {
  readonly sink: string
  readonly source: string
}

/** One of several sources: the events read from it (its hub and the lanes' own readers). */
export class SourceMetrics {
  readonly fetchedCount: Count
  constructor(name: string, context: Context.Context<never>) {
    this.fetchedCount = new Count(counter("fetched", { source: name }), context)
  }
  get fetched(): number {
    return this.fetchedCount.value
  }
  set fetched(n: number) {
    this.fetchedCount.value = n
  }
}

/** One sink's (or lane's) metrics and state. */
export class SinkMetrics {
  /** Delivery batches made (state; not served). */
  batches = 0
  /** How old the newest event done with is, at the time it was done (ms). */
  lagMs = 0
  /** When the checkpoint last moved (ms since the epoch); 0 before the first commit. */
  checkpointAt = 0
  cursor: string | undefined = undefined
  /** `interrupted`: stopped at the shutdown deadline with a batch still in flight. */
  state: SinkState = "starting"
  error: string | undefined = undefined

  readonly deliveredCount: Count
  readonly retriedCount: Count
  readonly deadLetteredCount: Count
  readonly filteredCount: Count
  private readonly lag: Level
  private readonly retention: Level
  private readonly latency: Metric.Histogram<number>
  private readonly context: Context.Context<never>

  constructor(
    name: string,
    context: Context.Context<never>,
    now: () => number,
    labels?: LaneLabels
  ) {
    this.context = context
    const sink: Attributes = labels === undefined ? { sink: name } : { ...labels }
    this.deliveredCount = new Count(counter("delivered", sink), context)
    this.retriedCount = new Count(counter("retried", sink), context)
    this.deadLetteredCount = new Count(counter("deadLettered", sink), context)
    this.filteredCount = new Count(counter("filtered", sink), context)
    this.lag = new Level(gauge("lagEvents", sink), context)
    observe(context, "lagSeconds", () => this.lagMs / 1000, sink)
    observe(
      context,
      "checkpointAge",
      () => (this.checkpointAt === 0 ? 0 : (now() - this.checkpointAt) / 1000),
      sink
    )
    this.retention = new Level(gauge("retention", sink), context)
    observe(
      context,
      "sinkUp",
      () =>
        this.state === "failed" || this.state === "stopped" || this.state === "interrupted" ? 0 : 1,
      sink
    )
    this.latency = Metric.histogram(described.latency[0], {
      description: described.latency[1],
      boundaries: latencyBuckets,
      attributes: sink
    })
    this.latency.valueUnsafe(context)
  }

  get delivered(): number {
    return this.deliveredCount.value
  }
  set delivered(n: number) {
    this.deliveredCount.value = n
  }
  get retried(): number {
    return this.retriedCount.value
  }
  set retried(n: number) {
    this.retriedCount.value = n
  }
  get deadLettered(): number {
    return this.deadLetteredCount.value
  }
  set deadLettered(n: number) {
    this.deadLetteredCount.value = n
  }
  get filtered(): number {
    return this.filteredCount.value
  }
  set filtered(n: number) {
    this.filteredCount.value = n
  }
  /** Events fetched but not yet done with, as far as the lane knows. */
  get lagEvents(): number {
    return this.lag.value
  }
  set lagEvents(n: number) {
    this.lag.value = n
  }
  /** How much of WorkOS's retention the sink's unread events have used (0 when caught up). */
  get retentionUsed(): number {
    return this.retention.value
  }
  set retentionUsed(n: number) {
    this.retention.value = n
  }

  /** `events` accepted `seconds` after they were fetched: one observation each. */
  observeLatency(seconds: number, events: number): void {
    for (let i = 0; i < events; i++) this.latency.updateUnsafe(seconds, this.context)
  }

  /** The latency histogram as it stands. */
  latencyState(): Metric.HistogramState {
    return this.latency.valueUnsafe(this.context)
  }
}

export class Metrics {
  /** The registry every metric of this runner is kept in (sinks' own effect `Metric`s too, see `Runner.run`). */
  readonly registry: Metric.MetricRegistry = new Map()
  /** A context holding `registry`, to update and read the metrics with. */
  readonly context: Context.Context<never>
  /** The parallel catch-up of the source's readers (see core's `CatchUp`). */
  readonly catchUp = new CatchUp.Progress()
  lastGap: string | undefined
  ready = false
  leaseHeld = false
  private deliveries: Deliveries | undefined
  /** The API key's request budget the source reads through (the console shows its use). */
  budget: RequestBudget.RequestBudget | undefined
  readonly sinks = new Map<string, SinkMetrics>()
  /** Several sources (or one not named `default`): each by name; empty with a file's one `source:`. */
  readonly sources = new Map<string, SourceMetrics>()
  readonly startedAt = Date.now()

  readonly fetchedCount: Count
  private readonly gapsCount: Count
  private readonly mismatches = new Map<string, Count>()
  /** The ids counted in `specMismatches`, the latest `mismatchIdsKept` of them. */
  private readonly mismatchIds = new Set<string>()
  /** The time the time-derived gauges are read at: `render(now)`'s, else the clock's. */
  private readAt: number | undefined

  constructor() {
    this.context = Context.make(Metric.MetricRegistry, this.registry)
    const now = () => this.now()
    const c = this.catchUp
    this.fetchedCount = new Count(counter("fetched"), this.context)
    observe(this.context, "catchUpActive", () => (c.active ? 1 : 0))
    observe(this.context, "slicesDone", () => c.slicesDone)
    observe(this.context, "slicesTotal", () => c.slicesTotal)
    observe(this.context, "catchUpRate", () =>
      c.active ? Math.round(c.eventsPerSecond(now()) * 10) / 10 : 0
    )
    observe(this.context, "catchUpLeft", () => {
      const left = c.timeLeftMs(now())
      return left === undefined ? -1 : Math.round(left / 1000)
    })
    this.gapsCount = new Count(counter("gaps"), this.context)
    observe(this.context, "leaseHeld", () => (this.leaseHeld ? 1 : 0))
  }

  /** The webhook doorbell's counts, served after the rest when webhooks are on. */
  get webhooks(): Deliveries | undefined {
    return this.deliveries
  }
  set webhooks(deliveries: Deliveries | undefined) {
    if (this.deliveries === undefined && deliveries !== undefined)
      observeWebhooks(this.context, () => this.deliveries)
    this.deliveries = deliveries
  }

  private now(): number {
    return this.readAt ?? Date.now()
  }

  get fetched(): number {
    return this.fetchedCount.value
  }
  set fetched(n: number) {
    this.fetchedCount.value = n
  }
  /** Possible gaps found (a cursor older than WorkOS keeps events); the last one is `lastGap`. */
  get gaps(): number {
    return this.gapsCount.value
  }
  set gaps(n: number) {
    this.gapsCount.value = n
  }

  /** Events that broke the spec, by type: each counted once, however many sinks take it. */
  get specMismatches(): ReadonlyMap<string, number> {
    return new Map([...this.mismatches].map(([type, count]) => [type, count.value]))
  }

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
    const count = this.mismatches.get(type)
    if (count !== undefined) {
      count.add(1)
      return false
    }
    const first = new Count(counter("specMismatches", { type }), this.context)
    first.add(1)
    this.mismatches.set(type, first)
    return true
  }

  /** A sink's metrics (a lane's, `labels` given, with several sources); labels are set when first asked for. */
  sink(name: string, labels?: LaneLabels): SinkMetrics {
    let m = this.sinks.get(name)
    if (m === undefined) {
      m = new SinkMetrics(name, this.context, () => this.now(), labels)
      this.sinks.set(name, m)
    }
    return m
  }

  /**
   * One of several sources, by name. Once there is one, fetched events are served per
   * source, and the unlabelled total (still counted, for the live line) is not.
   */
  source(name: string): SourceMetrics {
    let m = this.sources.get(name)
    if (m === undefined) {
      if (this.sources.size === 0) this.fetchedCount.unserve()
      m = new SourceMetrics(name, this.context)
      this.sources.set(name, m)
    }
    return m
  }

  observeLatency(name: string, seconds: number, events: number): void {
    this.sink(name).observeLatency(seconds, events)
  }

  /** Prometheus text exposition format: the registry (the runner's metrics, and those sinks recorded in it). */
  render(now = Date.now()): string {
    this.readAt = now
    try {
      return PrometheusMetrics.formatUnsafe(this.context)
    } finally {
      this.readAt = undefined
    }
  }
}
