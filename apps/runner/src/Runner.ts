/**
 * Puts a decoded config to work: the source (WorkOS, or the in-process stand-in of
 * the demo), the state store and its lease, the sinks, the pipeline, health and
 * metrics. `run` holds the lease for as long as it runs; a second runner on the same
 * store waits as a hot standby and takes over when the first stops renewing.
 */
import * as Os from "node:os"
import {
  CatchUp,
  EventPattern,
  EventStream,
  RequestBudget,
  Sink,
  Text,
  WorkOS
} from "@workos-relay/core"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import {
  type NamedSource,
  type RelayConfig,
  type SinkConfig,
  type Source as SourceConfig,
  sourcesOf,
  sourcesOfSink
} from "./Config.ts"
import * as Console from "./console/Routes.ts"
import * as HttpServer from "./http/Server.ts"
import { describeFailure, formatMillis } from "./internal/Text.ts"
import * as Observability from "./Observability.ts"
import { clearLine, Metrics, type SourceMetrics, summaryLine } from "./Observability.ts"
import * as Pipeline from "./Pipeline.ts"
import * as Start from "./pipeline/Start.ts"
import * as StateStore from "./StateStore.ts"
import { LeaseLost, type Service as Store, StoreError } from "./StateStore.ts"
import * as Telemetry from "./Telemetry.ts"
import { Deliveries } from "./webhooks/Deliveries.ts"
import { Doorbell } from "./webhooks/Doorbell.ts"
import * as Ingress from "./webhooks/Ingress.ts"

// ---------------------------------------------------------------------------
// The source

/** The event types worth asking WorkOS for: those some sink takes (undefined: every type). */
export const fetchTypes = (
  sinks: ReadonlyArray<SinkConfig>,
  sourceEvents?: ReadonlyArray<string>
): ReadonlyArray<string> | undefined => {
  const lists = (sink: SinkConfig) => [
    ...sink.patterns,
    ...(sourceEvents === undefined ? [] : [sourceEvents])
  ]
  if (sinks.some((sink) => lists(sink).every((list) => list.includes("*")))) return sourceEvents
  const wanted = new Set<string>()
  for (const sink of sinks) {
    const ls = lists(sink)
    for (const type of EventPattern.expand(["*"]))
      if (ls.every((list) => list.some((p) => EventPattern.matchesName(p, type)))) wanted.add(type)
  }
  return [...wanted]
}

/** How patient the WorkOS client is: `run` keeps the defaults, interactive commands less. */
export interface Patience {
  /** How it retries (default `WorkOS.defaults.retry`: about two minutes in all). */
  readonly retry?: Partial<WorkOS.RetryPolicy> | undefined
  /** How long one attempt may take (default `WorkOS.defaults.timeout`). */
  readonly timeout?: Duration.Input | undefined
}

/**
 * The client of a WorkOS source (the real API, or the demo's stand-in), over Node's
 * own `http`/`https` (`WorkOS.layerNode`). Against `effect/http`'s clients: fetching
 * a page took 15-37% less CPU than with `fetch`, which reads bodies through web
 * streams and loads Node's bundled undici, and 20-30% less than with
 * `NodeHttpClient`, which forks and races an upload fiber for each GET (the runner's
 * main thread: ~12% less CPU on the benchmark's no-op path).
 */
export const workosClient = (
  options: Patience & {
    readonly apiKey: Redacted.Redacted<string>
    readonly baseUrl: string
    /** The key's request budget in this process (default `RequestBudget.defaultMaxPerMinute`). */
    readonly maxRequestsPerMinute?: number | undefined
  }
) =>
  Layer.build(
    WorkOS.layerNode({
      ...options,
      // One budget per key in the process: readers, `status` and checks share it.
      budget: RequestBudget.forKey(Redacted.value(options.apiKey), options.baseUrl, {
        maxPerMinute: options.maxRequestsPerMinute
      })
    })
  ).pipe(Effect.map((context) => Context.get(context, WorkOS.WorkOS)))

export interface ResolvedSource {
  readonly client: WorkOS.Service
  readonly source: Pipeline.Source
  readonly start: EventStream.Start
  readonly pollInterval: number
}

/** Opens the source a config names (for `demo`, starts the stand-in and its trickle of events). */
export const openSource = (
  config: SourceConfig,
  sinks: ReadonlyArray<SinkConfig>,
  patience: Patience = {},
  watch: SourceWatch = {}
): Effect.Effect<ResolvedSource, Error, Scope.Scope> =>
  Effect.gen(function* () {
    let apiKey: Redacted.Redacted<string>
    let baseUrl: string
    if (config.type === "demo") {
      const standIn = yield* startDemoStandIn(config.rate)
      apiKey = Redacted.make(standIn.apiKey)
      baseUrl = standIn.url
    } else {
      apiKey = config.apiKey
      baseUrl = config.baseUrl
    }
    const maxRequestsPerMinute = config.type === "workos" ? config.maxRequestsPerMinute : undefined
    const client = yield* workosClient({ ...patience, apiKey, baseUrl, maxRequestsPerMinute }).pipe(
      Effect.mapError((e) => new Error(`WorkOS client: ${(e as Error).message}`))
    )
    if (watch.metrics !== undefined)
      watch.metrics.budget = RequestBudget.forKey(Redacted.value(apiKey), baseUrl, {
        maxPerMinute: maxRequestsPerMinute
      })
    const events = fetchTypes(sinks, config.type === "workos" ? config.events : undefined)
    const pollInterval = config.pollInterval
    const organizationId = config.type === "workos" ? config.organization : undefined
    const pageSize = config.type === "workos" ? config.pageSize : 100
    const defences = config.type === "workos" ? sourceDefences(config, watch) : {}
    const catchUp: CatchUp.Options =
      config.type === "workos"
        ? { ...config.catchUp, progress: watch.metrics?.catchUp }
        : { enabled: false }
    const webhooks = (watch.shared ?? watch.metrics)?.webhooks
    const doorbell = watch.doorbell
    const source: Pipeline.Source = {
      read: (start, follow, onCaughtUp) => {
        const stream = CatchUp.make(
          {
            start,
            follow,
            onCaughtUp,
            pollInterval,
            pageSize,
            ...defences,
            ...(events === undefined ? {} : { events }),
            ...(organizationId === undefined ? {} : { organizationId }),
            // Each stream its own subscription: a wake is kept until that stream waits.
            ...(doorbell !== undefined && follow ? { wake: doorbell.subscribe() } : {})
          },
          catchUp
        ).pipe(
          Stream.provideService(WorkOS.WorkOS, Telemetry.tracedClient(client, config.type))
        ) as Stream.Stream<Pipeline.Element, unknown>
        // What webhooks announced is now read: push against pull, in memory and in
        // the store's webhook table (one statement for a page that has any).
        const store = watch.store
        return webhooks === undefined
          ? stream
          : Stream.mapArrayEffect(stream, (elements) => {
              const seen = webhooks.read(elements)
              return seen.length === 0 || store === undefined
                ? Effect.succeed(elements)
                : store.markWebhooksSeen(seen, Date.now()).pipe(
                    Effect.catch((e) =>
                      Effect.logWarning(
                        `could not mark ${seen.length} announced event(s) seen in the state store: ${e.message}`
                      )
                    ),
                    Effect.as(elements)
                  )
            })
      }
    }
    // `latest` is resolved once, so every new sink starts at the same instant.
    const start = Start.resolve(
      configuredStart(config.type === "workos" ? config.start : "earliest")
    )
    return { client, source, start, pollInterval }
  })

/** Who hears of what the source meets: `run`'s metrics, and its store for `status`. */
export interface SourceWatch {
  /** The metrics of the run's one source (catch-up progress, the budget), or its first. */
  readonly metrics?: Metrics | undefined
  /** The run's metrics that every source adds to (gaps, webhooks seen); default `metrics`. */
  readonly shared?: Metrics | undefined
  readonly store?: StateStore.Service | undefined
  /** Rung by webhooks: a following reader asks WorkOS again at once. */
  readonly doorbell?: Doorbell | undefined
}

/** The source's settings against a server that cannot be trusted (see core's `EventStream`). */
const sourceDefences = (
  config: Extract<SourceConfig, { type: "workos" }>,
  watch: SourceWatch
): Partial<EventStream.Options> => ({
  reReadWindow: config.reReadWindow,
  retention: config.retention,
  stopAtGap: config.onGap === "stop",
  onGap: (gap) =>
    gapMet(
      // One of several sources: the gap says whose it is (in the log and in `status`).
      "name" in config && config.name !== StateStore.defaultSource
        ? { ...gap, reason: `source ${String(config.name)}: ${gap.reason}` }
        : gap,
      config.onGap === "stop" ? "stopped" : "continued",
      watch
    )
})

/** Counts a possible gap, keeps it for `status`, and logs it (a stop is reported by the pipeline). */
const gapMet = (
  gap: EventStream.Gap,
  action: StateStore.RecordedGap["action"],
  watch: SourceWatch
) =>
  Effect.gen(function* () {
    const text = EventStream.describeGap(gap)
    const metrics = watch.shared ?? watch.metrics
    if (metrics !== undefined) {
      metrics.gaps++
      metrics.lastGap = text
    }
    if (watch.store !== undefined)
      yield* watch.store
        .recordGap({ ...gap, detectedAt: Date.now(), action })
        .pipe(
          Effect.catch((e) =>
            Effect.logWarning(`could not keep the gap for status in the state store: ${e.message}`)
          )
        )
    if (action === "continued")
      yield* Effect.logError(
        `${text}; going on from the oldest event WorkOS keeps (source.onGap: continue)`
      )
  })

/** Where `source.start` points (`"latest"` still to be resolved: `Start.resolve`). */
export const configuredStart = (start: string): EventStream.Start =>
  start === "earliest" || start === "latest"
    ? start
    : start.startsWith("event_")
      ? { after: start }
      : { since: new Date(start).toISOString() }

/** The demo: the WorkOS stand-in in this process, seeded with one event of every type, then a few new ones a second. */
const startDemoStandIn = (rate: number) =>
  Effect.gen(function* () {
    const { WorkOSStandIn } = yield* Effect.promise(() => import("@workos-relay/testing"))
    const standIn = yield* WorkOSStandIn.make({ seed: Date.now() % 100_000 })
    if (rate > 0) {
      yield* Effect.sync(() => standIn.appendGenerated(1)).pipe(
        Effect.andThen(Effect.sleep(Math.max(1, Math.round(1000 / rate)))),
        Effect.forever,
        Effect.forkScoped
      )
    }
    return standIn
  })

// ---------------------------------------------------------------------------
// Sinks

export interface MadeSink {
  readonly config: SinkConfig
  readonly sink: Sink.Sink | undefined
  readonly error: string | undefined
}

/**
 * A sink's own `maxWait`, in milliseconds: a `Duration.Input` (`"1 second"`, `1000`)
 * or a duration as the config file writes one (`"500ms"`). Undefined when it is
 * neither, or negative, or infinite.
 */
const maxWaitMillis = (input: unknown): number | undefined => {
  const ms =
    typeof input === "number"
      ? input
      : ((typeof input === "string" ? Text.parseDuration(input) : undefined) ??
        Option.getOrUndefined(
          Option.map(Duration.fromInput(input as Duration.Input), Duration.toMillis)
        ))
  return ms !== undefined && Number.isFinite(ms) && ms >= 0 ? ms : undefined
}

const isPositiveInteger = (n: unknown): boolean => Number.isInteger(n) && (n as number) >= 1

/**
 * What is wrong with the sink a `make` returned, by the rules of the config file's
 * `batch` (a batch of at most 0 events would never be delivered, and the lane would spin).
 */
const madeSinkProblem = (sink: unknown): string | undefined => {
  if (typeof (sink as Sink.Sink | null)?.deliver !== "function")
    return `its make returned ${describeValue(sink)}, not a sink ({ batch, deliver })`
  const batch: unknown = (sink as Sink.Sink).batch
  if (typeof batch !== "object" || batch === null)
    return `its make returned no batch settings: return { batch: { maxEvents, maxWait }, deliver }`
  const { maxEvents, maxBytes, maxWait } = batch as Record<string, unknown>
  const problems: Array<string> = []
  if (!isPositiveInteger(maxEvents))
    problems.push(
      `batch.maxEvents must be an integer of at least 1, got ${describeValue(maxEvents)}`
    )
  if (maxBytes !== undefined && !isPositiveInteger(maxBytes))
    problems.push(`batch.maxBytes must be an integer of at least 1, got ${describeValue(maxBytes)}`)
  if (maxWaitMillis(maxWait) === undefined)
    problems.push(
      `batch.maxWait must be a duration such as "500 millis" or "1 second", got ${describeValue(maxWait)}`
    )
  return problems.length === 0
    ? undefined
    : `${problems.join("; ")} (in the batch settings its make returned)`
}

const describeValue = (value: unknown): string =>
  typeof value === "string" ? JSON.stringify(value) : describeFailure(value)

/**
 * The sink, with a `check` that fails only as the contract says (`SinkUnavailable`
 * or `SinkFatal`, each with a readable reason), for `validate --check-connections`.
 */
const withContractCheck = (sink: Sink.Sink): Sink.Sink => {
  const check = sink.check
  if (check === undefined) return sink
  return {
    ...sink,
    check: Effect.suspend(() => check).pipe(
      Effect.mapError(Pipeline.sinkError),
      Effect.catchDefect((defect) =>
        Effect.fail(new Sink.SinkFatal({ reason: describeFailure(defect) }))
      )
    )
  }
}

/**
 * Makes every sink; one that cannot be made (its `make` fails, whatever with, or
 * throws, or returns bad batch settings) is reported with why, the others go on.
 */
export const makeSinks = (
  sinks: ReadonlyArray<SinkConfig>,
  options: {
    readonly checkOnly?: boolean
    readonly workos?: Sink.Context["workos"]
    /** The WorkOS key a sink itself uses, when it differs by sink (several sources). */
    readonly workosOf?: ((sink: SinkConfig) => Sink.Context["workos"]) | undefined
  } = {}
) =>
  Effect.forEach(sinks, (config) => {
    const failed = (failure: unknown) =>
      Effect.succeed<MadeSink>({
        config,
        sink: undefined,
        error: Pipeline.sinkError(failure).reason
      })
    // `suspend`: a `make` that throws is a sink that could not start, not a crash.
    return Effect.suspend(() =>
      config.definition.make(config.options, {
        name: config.name,
        checkOnly: options.checkOnly,
        directory: config.directory,
        workos: options.workosOf?.(config) ?? options.workos
      })
    ).pipe(
      Effect.map((sink): MadeSink => {
        const problem = madeSinkProblem(sink)
        return problem === undefined
          ? { config, sink: withContractCheck(sink), error: undefined }
          : { config, sink: undefined, error: problem }
      }),
      Effect.catch(failed),
      Effect.catchDefect(failed)
    )
  })

export const laneSpec = (made: MadeSink & { readonly sink: Sink.Sink }): Pipeline.LaneSpec => {
  const preferred = made.sink.batch
  const wanted = made.config.batch
  const maxBytes = wanted.maxBytes ?? preferred.maxBytes
  return {
    name: made.config.name,
    sink: made.sink,
    // The config may lower the sink's limits, never raise them past what the destination takes.
    batch: {
      maxEvents: Math.min(wanted.maxEvents ?? preferred.maxEvents, preferred.maxEvents),
      maxBytes:
        preferred.maxBytes === undefined
          ? maxBytes
          : Math.min(maxBytes ?? preferred.maxBytes, preferred.maxBytes),
      maxWait: wanted.maxWait ?? maxWaitMillis(preferred.maxWait) ?? 1000
    },
    retry: made.config.retry,
    accepts: Pipeline.makeFilter(made.config.patterns, made.config.organizations),
    raw: made.config.definition.raw === true
  }
}

// ---------------------------------------------------------------------------
// Run

export interface RunOptions {
  readonly stop: Deferred.Deferred<void>
  /** Print a live summary line on stderr (a terminal). */
  readonly summary?: boolean | undefined
  /** Called once the metrics server listens (tests, the demo). */
  readonly onListening?: ((port: number) => void) | undefined
  readonly metrics?: Metrics | undefined
}

export interface RunReport {
  readonly lanes: ReadonlyArray<Pipeline.LaneReport>
  readonly metrics: Metrics
  readonly elapsedMs: number
}

export const holderId = (): string =>
  `${Os.hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`

/**
 * Runs until `stop` completes, the lease is lost (`LeaseLost`) or WorkOS rejects the
 * key or the query (`SourceRejected`: checkpoints are committed first). Waits as a
 * hot standby while another runner holds the lease.
 */
export const run = (
  config: RelayConfig,
  options: RunOptions
): Effect.Effect<RunReport, LeaseLost | StoreError | Pipeline.SourceRejected | Error> => {
  const metrics = options.metrics ?? new Metrics()
  return Effect.scoped(
    Effect.gen(function* () {
      const started = Date.now()
      // With several sources (or one not named default) a lane is a (sink, source).
      const labelled = isLabelled(config)
      for (const sink of config.sinks)
        for (const source of labelled ? sourcesOfSink(config, sink) : [undefined])
          laneMetrics(metrics, sink.name, source?.name)
      // The doorbell answers as soon as the server listens; it keeps deliveries once the store is open.
      const storeReady = yield* Deferred.make<Store>()
      const doorbell =
        config.webhooks === undefined || config.http === undefined
          ? undefined
          : yield* startDoorbell(config, metrics, storeReady)
      const operatorConsole =
        config.console === undefined || config.http === undefined
          ? undefined
          : yield* Console.make(config.console, metrics, {
              sinks: config.sinks,
              read: fetchTypes(
                config.sinks,
                config.source.type === "workos" ? config.source.events : undefined
              )
            })
      if (config.http !== undefined) {
        const paths = [
          ...Observability.paths,
          ...(doorbell === undefined ? [] : [doorbell.routePath]),
          ...(operatorConsole === undefined ? [] : Console.paths)
        ]
        const port = yield* HttpServer.serve(
          Layer.mergeAll(
            Observability.routes(metrics),
            doorbell === undefined ? Layer.empty : doorbell.routes,
            operatorConsole === undefined ? Layer.empty : operatorConsole.routes,
            HttpServer.notFound(paths)
          ),
          config.http
        )
        yield* Effect.logInfo(
          `health and metrics on http://${config.http.host}:${port} (${paths.join(" ")})`
        )
        options.onListening?.(port)
      }
      // Locks, a full disk mid-run, a Postgres away: waited out and logged, never an exit.
      const store = yield* StateStore.layer(config.state, { for: "run" }).pipe(
        Layer.build,
        Effect.map((c) => Context.get(c, StateStore.StateStore) as Store)
      )
      yield* Deferred.succeed(storeReady, store)
      if (doorbell !== undefined) yield* doorbell.restore(store)
      if (operatorConsole !== undefined) operatorConsole.state.store = store

      // -- the lease: wait as a standby until it is ours
      const holder = holderId()
      const ttl = config.state.leaseTtl
      // The store may be locked for a while (its attempts wait): a stop signal still stops.
      const unlessStopped = <A, E>(effect: Effect.Effect<A, E>) =>
        Effect.raceFirst(
          effect.pipe(Effect.map(Option.some)),
          Deferred.await(options.stop).pipe(Effect.as(Option.none<A>()))
        )
      const stoppedEarly = () => ({ lanes: [], metrics, elapsedMs: Date.now() - started })
      const first = yield* unlessStopped(store.acquireLease(holder, ttl))
      if (Option.isNone(first)) return stoppedEarly()
      let lease = first.value
      let standby = false
      while (lease === undefined) {
        if (!standby) {
          const current = yield* unlessStopped(store.lease())
          if (Option.isNone(current)) return stoppedEarly()
          // Undefined when the holder let go since our attempt: the next one takes it.
          if (current.value !== undefined) {
            standby = true
            yield* Effect.logInfo(
              `another runner (${current.value.holder}) holds the lease; waiting as a hot standby (lease expires in ${formatMillis(current.value.expiresAt - Date.now())})`
            )
          }
        }
        if (standby) {
          const stopped = yield* Effect.raceFirst(
            Deferred.await(options.stop).pipe(Effect.as(true)),
            Effect.sleep(Math.max(200, ttl / 5)).pipe(Effect.as(false))
          )
          if (stopped) return stoppedEarly()
        }
        const next = yield* unlessStopped(store.acquireLease(holder, ttl))
        if (Option.isNone(next)) return stoppedEarly()
        lease = next.value
      }
      if (standby) yield* Effect.logInfo(`took over the lease (token ${lease.token})`)
      const held = lease
      metrics.leaseHeld = true
      yield* Effect.addFinalizer(() => store.releaseLease(holder, held.token).pipe(Effect.ignore))
      const renew = Effect.gen(function* () {
        while (true) {
          yield* Effect.sleep(ttl / 3)
          const ok = yield* store
            .renewLease(holder, held.token, ttl)
            .pipe(Effect.catch(() => Effect.succeed(true)))
          if (!ok) {
            metrics.leaseHeld = false
            return yield* Effect.fail(new LeaseLost({ holder, token: held.token }))
          }
        }
      })

      // -- sources and sinks: one reader per source, a lane per (sink, source)
      const sources = sourcesOf(config)
      const takes = (sink: SinkConfig, source: string) =>
        sourcesOfSink(config, sink).some((s) => s.name === source)
      const perSource = sources.map((source) => ({
        source,
        sinks: config.sinks.filter((sink) => takes(sink, source.name))
      }))
      const opened = yield* Effect.forEach(perSource, ({ source, sinks }, i) =>
        openSource(
          source,
          sinks,
          {},
          {
            // The live catch-up progress and the console's budget: the first source's.
            metrics: i === 0 ? metrics : undefined,
            shared: metrics,
            store,
            doorbell: doorbell?.doorbell
          }
        )
      )
      const made = yield* makeSinks(config.sinks, {
        workosOf: (sink) => workosContext(sourcesOfSink(config, sink))
      })
      const lanes: Array<Pipeline.LaneSpec> = []
      for (const m of made) {
        if (m.sink === undefined) {
          for (const source of labelled ? sourcesOfSink(config, m.config) : [undefined]) {
            const sm = laneMetrics(metrics, m.config.name, source?.name)
            sm.state = "failed"
            sm.error = m.error
          }
          yield* Effect.logError(`sink ${m.config.name} could not start: ${m.error}`)
        } else lanes.push(laneSpec(m as MadeSink & { sink: Sink.Sink }))
      }
      const sourceLanes = perSource.map(({ source }) =>
        lanes
          .filter((lane) =>
            takes(made.find((m) => m.config.name === lane.name)!.config, source.name)
          )
          .map((lane) => sourceLane(lane, source.name, labelled, metrics))
      )
      if (operatorConsole !== undefined) operatorConsole.state.lanes = sourceLanes.flat()
      metrics.ready = true
      if (lanes.length > 0)
        yield* Effect.logInfo(
          `relaying to ${lanes.length} sink(s): ${lanes.map((l) => l.name).join(", ")}${labelled ? ` from ${sources.length} source(s): ${sources.map((s) => s.name).join(", ")}` : ""} (state: ${store.description}, lease token ${held.token})`
        )

      if (options.summary === true) {
        const previous = new Map<string, number>()
        let last = Date.now()
        yield* Effect.sync(() => {
          const now = Date.now()
          process.stderr.write(`${clearLine}${summaryLine(metrics, previous, now - last)}`)
          last = now
        }).pipe(Effect.andThen(Effect.sleep(1000)), Effect.forever, Effect.forkScoped)
        yield* Effect.addFinalizer(() => Effect.sync(() => process.stderr.write(clearLine)))
      }

      // A source that ends its run (WorkOS rejects its key) stops the others too, each
      // finishing its batches and committing, as one source does.
      const stopAll = yield* Deferred.make<void>()
      yield* Deferred.await(options.stop).pipe(
        Effect.andThen(Deferred.succeed(stopAll, undefined)),
        Effect.forkScoped
      )
      const pipelines = perSource.map(({ source }, i) => {
        const read = labelled
          ? countedBy(opened[i]!.source, metrics.source(source.name))
          : opened[i]!.source
        return Pipeline.run({
          lanes: sourceLanes[i]!,
          source: operatorConsole?.state.tap.wrap(read) ?? read,
          store,
          token: () => held.token,
          metrics,
          start: opened[i]!.start,
          mode: { _tag: "live", pollInterval: opened[i]!.pollInterval },
          stop: stopAll,
          shutdownTimeout: config.shutdownTimeout,
          ...(source.type === "workos" ? { retention: source.retention } : {})
        }).pipe(
          Effect.onExit(() => Deferred.succeed(stopAll, undefined)),
          Effect.exit
        )
      })
      const pipeline = Effect.all(pipelines, { concurrency: "unbounded" }).pipe(
        Effect.flatMap((exits) => {
          const failed = exits.find(Exit.isFailure)
          return failed !== undefined
            ? failed
            : Effect.succeed(exits.flatMap((exit) => (Exit.isSuccess(exit) ? exit.value : [])))
        })
      )
      const reports = yield* Effect.raceFirst(pipeline, renew)
      metrics.ready = false
      const failedAtStart = made
        .filter((m) => m.sink === undefined)
        .map((m) => ({ name: m.config.name, delivered: 0, deadLettered: 0, error: m.error }))
      return { lanes: [...failedAtStart, ...reports], metrics, elapsedMs: Date.now() - started }
    })
  ).pipe(
    Effect.catchTag("StoreError", (e) => Effect.fail(e)),
    Effect.mapError((e) =>
      e instanceof LeaseLost || e instanceof StoreError
        ? e
        : e instanceof Error
          ? e
          : new Error(String(e))
    ),
    Telemetry.exporting(config.otlp),
    // What sinks record as effect `Metric`s (the mirror's reconcile rounds) goes to the
    // runner's registry: served on /metrics and exported (OTLP) with the rest.
    Effect.provideService(Metric.MetricRegistry, metrics.registry)
  )
}

/**
 * Whether lanes are named and labelled by (sink, source): with several sources, or
 * one not named `default`. A file's one `source:` keeps today's names and labels.
 */
export const isLabelled = (config: Pick<RelayConfig, "source" | "sources">): boolean => {
  const sources = sourcesOf(config)
  return sources.length > 1 || sources[0]!.name !== StateStore.defaultSource
}

/** A lane's name in logs, metrics and reports: the sink's, or `sink@source` when labelled. */
export const laneName = (sink: string, source: string | undefined): string =>
  source === undefined ? sink : `${sink}@${source}`

/** The metrics of a lane, labelled by sink and source when there are several sources. */
const laneMetrics = (metrics: Metrics, sink: string, source: string | undefined) =>
  metrics.sink(laneName(sink, source), source === undefined ? undefined : { sink, source })

/** The lane of a sink for one source: its own name, metrics, checkpoint and dead letters. */
export const sourceLane = (
  spec: Pipeline.LaneSpec,
  source: string,
  labelled: boolean,
  metrics: Metrics
): Pipeline.LaneSpec => {
  if (!labelled) return spec
  laneMetrics(metrics, spec.name, source)
  return { ...spec, name: laneName(spec.name, source), key: { sink: spec.name, source } }
}

/** A source whose reads are counted for it (`workos_relay_events_fetched_total{source}`). */
const countedBy = (source: Pipeline.Source, counts: SourceMetrics): Pipeline.Source => ({
  read: (start, follow, onCaughtUp) =>
    Stream.mapArray(source.read(start, follow, onCaughtUp), (elements) => {
      counts.fetched += elements.length
      return elements
    })
})

/** The WorkOS key a sink uses itself (a mirror reads WorkOS): that of the first WorkOS source it takes. */
export const workosContext = (sources: ReadonlyArray<NamedSource>): Sink.Context["workos"] => {
  const source = sources.find((s) => s.type === "workos")
  return source?.type === "workos"
    ? {
        apiKey: source.apiKey,
        baseUrl: source.baseUrl,
        maxRequestsPerMinute: source.maxRequestsPerMinute
      }
    : undefined
}

/**
 * The webhook doorbell of a config with `webhooks`: its route, and a check every
 * few seconds that reports announced events the Events API has not returned.
 */
const startDoorbell = (
  config: RelayConfig,
  metrics: Metrics,
  storeReady: Deferred.Deferred<Store>
) =>
  Effect.gen(function* () {
    const settings = config.webhooks!
    const scope = yield* Effect.scope
    const doorbell = new Doorbell(settings, scope)
    const deliveries = new Deliveries()
    metrics.webhooks = deliveries
    // Several sources: a webhook rings them all, and any type some sink takes is announced.
    const sources = sourcesOf(config)
    const source = sources.length === 1 ? config.source : undefined
    const routes = Ingress.routes({
      settings,
      doorbell,
      deliveries,
      types: fetchTypes(config.sinks, source?.type === "workos" ? source.events : undefined),
      organizationId: source?.type === "workos" ? source.organization : undefined,
      // A store locked for long: 503 after a while, WorkOS sends the delivery again.
      record: (id, type, receivedAt) =>
        Deferred.await(storeReady).pipe(
          Effect.flatMap((store) => store.recordWebhook(id, type, receivedAt)),
          Effect.timeout(recordTimeoutMs)
        )
    })
    /** What was pending when the runner last stopped, then an hourly prune of the table. */
    const restore = (store: Store) =>
      Effect.gen(function* () {
        const pending = yield* store.pendingWebhooks()
        deliveries.restore(
          pending.map((p) => ({ id: p.eventId, type: p.eventType, receivedAt: p.receivedAt }))
        )
        if (pending.length > 0)
          yield* Effect.logInfo(
            `${pending.length} event(s) announced by webhook before the restart are not yet returned by the Events API; watching them`
          )
        yield* store.pruneWebhooks(Date.now() - webhookKeepMs).pipe(
          Effect.catch((e) => Effect.logWarning(`could not prune the webhook table: ${e.message}`)),
          Effect.andThen(Effect.sleep(60 * 60_000)),
          Effect.forever,
          Effect.forkIn(scope)
        )
      })
    // Only the runner holding the lease reads, so only it watches: first the store's
    // pending rows (a standby's receipts too), then what is overdue.
    const watch = Effect.gen(function* () {
      if (!metrics.leaseHeld) return
      // Held: the store is open (the lease is taken from it).
      yield* syncWithStore(yield* Deferred.await(storeReady), deliveries)
      yield* reportOverdue(deliveries, settings.overdueAfter)
    })
    yield* watch.pipe(
      Effect.andThen(Effect.sleep(Math.min(5_000, settings.overdueAfter))),
      Effect.forever,
      Effect.forkScoped
    )
    return { doorbell, routes, routePath: settings.path, restore }
  })

/** Logs each announced event newly overdue (the Events API has not returned it after `after` ms). */
export const reportOverdue = (deliveries: Deliveries, after: number) =>
  Effect.forEach(deliveries.overdue(after).fresh, (p) =>
    Effect.logError(
      `event ${p.id} (${p.type}) was announced by a webhook ${formatMillis(Date.now() - p.receivedAt)} ago and the Events API has not returned it: check the source's filters and WorkOS's status; the relay keeps reading`
    )
  )

/** The store's pending webhook rows into memory; those already read marked seen. */
export const syncWithStore = (store: Store, deliveries: Deliveries) =>
  store.pendingWebhooks().pipe(
    Effect.flatMap((rows) => {
      const read = deliveries.sync(
        rows.map((r) => ({ id: r.eventId, type: r.eventType, receivedAt: r.receivedAt }))
      )
      return read.length === 0 ? Effect.void : store.markWebhooksSeen(read, Date.now())
    }),
    Effect.catch((e) =>
      Effect.logWarning(
        `could not compare the webhook table with this runner's reads: ${e.message}`
      )
    )
  )

/** How long a delivery may wait for the store before it is answered 503. */
export const recordTimeoutMs = 10_000
/**
 * Seen rows of the webhook table are kept a day: `status` looks at the last hour, and
 * a day is enough to look back after a night; pending rows are kept until seen.
 */
export const webhookKeepMs = 24 * 60 * 60_000
