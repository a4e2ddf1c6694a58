/**
 * The operator console: a few static pages and their JSON API (`Api.ts`) under
 * `/console`, as routes of the runner's HTTP server (`http/Server.ts`).
 *
 * The pages read what the runner knows: its `Metrics` and the state store (dead
 * letters). Retry and drop are the same code as `dead-letters retry|drop`
 * (`deadLetters/Retry.ts`). The API asks for the configured bearer token; POSTs take
 * JSON only, and a browser's `Origin` must be the console's own, so another site
 * cannot make a visitor's browser act (the API sends no CORS headers).
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import { EventPattern } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import { HttpRouter, type HttpServerRequest, HttpServerResponse } from "effect/http"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { Scope } from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ConsoleSettings } from "../config/Console.ts"
import { type Destinations, retryLetters } from "../deadLetters/Retry.ts"
import type { Routes } from "../http/Server.ts"
import { describeFailure } from "../internal/Text.ts"
import type { Metrics } from "../Observability.ts"
import type * as Pipeline from "../Pipeline.ts"
import type * as StateStore from "../StateStore.ts"
import * as Api from "./Api.ts"
import * as AuditLog from "./AuditLog.ts"
import * as Catalogue from "./Catalogue.ts"
import { Refused } from "./Refused.ts"
import { Tap } from "./Tap.ts"

/** The paths the console serves (the API and assets are below `/console/`). */
export const paths = ["/console"] as const

/** Seconds between two events/s samples, and how many are kept (5 minutes). */
export const rateInterval = 2
const samplesKept = 150

/**
 * Cluster mode (`cluster/Console.ts`): the cluster's view, which lanes run on this
 * runner (the overview shows those), and the sinks to retry a dead letter through
 * (its unit's running lane here, or the sink made for the request).
 */
export interface ConsoleCluster {
  readonly view: Effect.Effect<Api.ClusterOverview, Error>
  readonly runsHere: (lane: string) => boolean
  readonly destinations: (
    letters: ReadonlyArray<StateStore.DeadLetter>
  ) => Effect.Effect<Destinations, Error, Scope>
}

/** What the console reads, filled in by the runner as it gets them. */
export class ConsoleState {
  store: StateStore.Service | undefined
  cluster: ConsoleCluster | undefined
  /** The lanes the running pipeline delivers to: undefined until the lease is held. */
  lanes: ReadonlyArray<Pipeline.LaneSpec> | undefined
  /** The live tail of events read (the runner wraps its source with it). */
  readonly tap = new Tap()
  /** Per sink: events done with per second, oldest first. */
  readonly rates = new Map<string, Array<number>>()
  private readonly lastDone = new Map<string, number>()
  /** The budget's requests let through so far, sampled every `rateInterval`: the last minute's. */
  private readonly budgetSamples: Array<{ readonly at: number; readonly requests: number }> = []

  readonly metrics: Metrics
  constructor(metrics: Metrics) {
    this.metrics = metrics
  }

  /** Takes one sample of each sink's events/s. */
  sample(): void {
    for (const [name, m] of this.metrics.sinks) {
      const done = m.delivered + m.deadLettered + m.filtered
      const before = this.lastDone.get(name) ?? done
      this.lastDone.set(name, done)
      const rates = this.rates.get(name) ?? []
      rates.push((done - before) / rateInterval)
      if (rates.length > samplesKept) rates.shift()
      this.rates.set(name, rates)
    }
    const budget = this.metrics.budget
    if (budget !== undefined) {
      const now = Date.now()
      this.budgetSamples.push({ at: now, requests: budget.stats().requests })
      while (this.budgetSamples[0]!.at < now - 60_000) this.budgetSamples.shift()
    }
  }

  /** The request budget's use over the last minute (since the start, in the first one). */
  budgetUse(): Api.BudgetUse | null {
    const budget = this.metrics.budget
    if (budget === undefined) return null
    const stats = budget.stats()
    const from = this.budgetSamples[0] ?? { at: this.metrics.startedAt, requests: 0 }
    const seconds = Math.max(1, (Date.now() - from.at) / 1000)
    return {
      perMinute: Math.round(((stats.requests - from.requests) * 60) / seconds),
      maxPerMinute: stats.maxPerMinute,
      throttled: stats.throttled
    }
  }
}

/** The console's state and routes; samples events/s for the scope's life. */
export const make = (
  settings: ConsoleSettings,
  metrics: Metrics,
  catalogue: Catalogue.Options
): Effect.Effect<{ readonly state: ConsoleState; readonly routes: Routes }, never, Scope> =>
  Effect.gen(function* () {
    const state = new ConsoleState(metrics)
    yield* Effect.sync(() => state.sample()).pipe(
      Effect.andThen(Effect.sleep(rateInterval * 1000)),
      Effect.forever,
      Effect.forkScoped
    )
    return { state, routes: routes(settings, state, catalogue) }
  })

// ---------------------------------------------------------------------------
// Assets: shipped next to this module (src/console/assets, dist/console/assets)

const asset = (name: string, contentType: string) => {
  const body = Fs.readFileSync(new URL(`./assets/${name}`, import.meta.url), "utf8")
  return HttpServerResponse.text(body, {
    contentType,
    headers: { "cache-control": "no-cache", "x-content-type-options": "nosniff" }
  })
}

const assets = (): Routes => {
  const page = asset("index.html", "text/html; charset=utf-8")
  return Layer.mergeAll(
    HttpRouter.add("GET", "/console", Effect.succeed(page)),
    HttpRouter.add(
      "GET",
      "/console/app.js",
      Effect.succeed(asset("app.js", "text/javascript; charset=utf-8"))
    ),
    HttpRouter.add(
      "GET",
      "/console/app.css",
      Effect.succeed(asset("app.css", "text/css; charset=utf-8"))
    )
  )
}

// ---------------------------------------------------------------------------
// The API

const answer = <S extends Schema.Codec<any, any, never, never>>(
  schema: S,
  body: S["Type"],
  status = 200
) =>
  Schema.encodeEffect(schema)(body).pipe(
    Effect.map((encoded) => HttpServerResponse.jsonUnsafe(encoded, { status })),
    Effect.orDie
  )

const refuse = (status: number, error: string) =>
  Effect.succeed(HttpServerResponse.jsonUnsafe({ error }, { status }))

/** Who asks: `token` when a token is configured and given, else `loopback`; refused otherwise. */
const authorize = (settings: ConsoleSettings, request: HttpServerRequest.HttpServerRequest) => {
  if (settings.token === undefined) return "loopback"
  const given = /^Bearer (.+)$/.exec(request.headers.authorization ?? "")?.[1] ?? ""
  const expected = Buffer.from(Redacted.value(settings.token))
  const actual = Buffer.from(given)
  if (actual.length !== expected.length || !Crypto.timingSafeEqual(actual, expected))
    throw new Refused(401, "a bearer token is required (console.token)")
  return "token"
}

const hostOf = (origin: string): string | undefined => {
  try {
    return new URL(origin).host
  } catch {
    return undefined
  }
}

/** A state-changing request: JSON only, and from the console's own origin. */
const checkAction = (request: HttpServerRequest.HttpServerRequest) => {
  if (!(request.headers["content-type"] ?? "").startsWith("application/json"))
    throw new Refused(415, "expected a JSON body (content-type: application/json)")
  // Behind a TLS proxy the origin is https://, the host the same.
  const origin = request.headers.origin
  if (origin !== undefined && hostOf(origin) !== request.headers.host)
    throw new Refused(403, `cross-site request refused (origin ${origin})`)
}

/** Runs an API handler: refusals and store errors become JSON errors. */
const api =
  (
    settings: ConsoleSettings,
    handler: (
      request: HttpServerRequest.HttpServerRequest,
      who: string
    ) => Effect.Effect<HttpServerResponse.HttpServerResponse, unknown>
  ) =>
  (request: HttpServerRequest.HttpServerRequest) =>
    Effect.suspend(() => handler(request, authorize(settings, request))).pipe(
      Effect.catchDefect((defect) => Effect.fail(defect)),
      Effect.catch((error) =>
        error instanceof Refused
          ? refuse(error.status, error.message)
          : refuse(500, describeFailure(error))
      )
    )

const need = <A>(value: A | undefined, what: string): A => {
  if (value === undefined) throw new Refused(503, what)
  return value
}

const json = (request: HttpServerRequest.HttpServerRequest) =>
  request.text.pipe(
    Effect.flatMap((text) =>
      Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: () => new Refused(400, "the body is not JSON")
      })
    )
  )

const body = (request: HttpServerRequest.HttpServerRequest) =>
  json(request).pipe(
    Effect.flatMap((json) =>
      Schema.decodeUnknownEffect(Api.Ids)(json).pipe(
        Effect.mapError(
          (e) => new Refused(400, `expected { "ids": [dead letter ids] }: ${e.message}`)
        )
      )
    )
  )

export const overview = (state: ConsoleState, deadLetters: Readonly<Record<string, number>>) => {
  const m = state.metrics
  const sinks = [...m.sinks].map(
    ([name, s]): Api.SinkOverview => ({
      name,
      state: s.state,
      delivered: s.delivered,
      deadLettered: s.deadLettered,
      deadLetters: deadLetters[name] ?? 0,
      filtered: s.filtered,
      retried: s.retried,
      lagEvents: s.lagEvents,
      lagMs: s.lagMs,
      retentionUsed: s.retentionUsed,
      cursor: s.cursor ?? null,
      checkpointAt: s.checkpointAt === 0 ? null : s.checkpointAt,
      error: s.error ?? null,
      rate: state.rates.get(name) ?? []
    })
  )
  return {
    now: Date.now(),
    startedAt: m.startedAt,
    rateInterval,
    source: {
      fetched: m.fetched,
      leaseHeld: m.leaseHeld,
      ready: m.ready,
      gaps: m.gaps,
      lastGap: m.lastGap ?? null,
      specMismatches: Object.fromEntries(m.specMismatches),
      retentionUsed: Math.max(0, ...sinks.map((s) => s.retentionUsed)),
      budget: state.budgetUse()
    },
    sinks
  }
}

const routes = (
  settings: ConsoleSettings,
  state: ConsoleState,
  catalogue: Catalogue.Options
): Routes =>
  Layer.mergeAll(
    assets(),
    HttpRouter.add(
      "GET",
      "/console/api/catalogue",
      api(settings, () =>
        Catalogue.catalogue(catalogue).pipe(Effect.flatMap((c) => answer(Api.Catalogue, c)))
      )
    ),
    HttpRouter.add(
      "GET",
      "/console/api/audit",
      api(settings, () =>
        AuditLog.list(catalogue.sinks).pipe(Effect.flatMap((a) => answer(Api.AuditSinks, a)))
      )
    ),
    HttpRouter.add(
      "GET",
      "/console/api/audit/query",
      api(settings, (request, who) =>
        AuditLog.query(
          catalogue.sinks,
          new URL(request.url, "http://console").searchParams,
          who
        ).pipe(Effect.flatMap((page) => answer(Api.AuditPage, page)))
      )
    ),
    // A POST, though it changes nothing: it walks the whole chain, which no other site
    // should make a visitor's browser start.
    HttpRouter.add(
      "POST",
      "/console/api/audit/verify",
      api(settings, (request, who) =>
        Effect.suspend(() => {
          checkAction(request)
          return json(request)
        }).pipe(
          Effect.flatMap((body) => AuditLog.verify(catalogue.sinks, body, who)),
          Effect.flatMap((result) => answer(Api.AuditVerify, result))
        )
      )
    ),
    HttpRouter.add(
      "GET",
      "/console/api/overview",
      api(settings, () =>
        Effect.gen(function* () {
          const counts = state.store === undefined ? {} : yield* state.store.deadLetterCounts()
          const base = overview(state, counts)
          const cluster = state.cluster
          if (cluster === undefined) return yield* answer(Api.Overview, base)
          return yield* answer(Api.Overview, {
            ...base,
            sinks: base.sinks.filter((sink) => cluster.runsHere(sink.name)),
            cluster: yield* cluster.view
          })
        })
      )
    ),
    HttpRouter.add(
      "GET",
      "/console/api/dead-letters",
      api(settings, (request) => {
        const store = need(state.store, "the state store is not open yet")
        const query = new URL(request.url, "http://console").searchParams
        const sink = query.get("sink") || undefined
        const type = query.get("type") || ""
        const error = (query.get("error") || "").toLowerCase()
        const limit = Math.min(Math.max(1, Number(query.get("limit")) || 500), 10_000)
        return store.deadLetters({ sink, limit: 10_000 }).pipe(
          Effect.map((letters) =>
            letters
              .filter((l) => l.eventType.includes(type))
              .filter((l) => l.error.toLowerCase().includes(error))
              .slice(0, limit)
          ),
          Effect.flatMap((deadLetters) => answer(Api.DeadLetters, { deadLetters }))
        )
      })
    ),
    HttpRouter.add(
      "GET",
      "/console/api/tap",
      api(settings, (request, who) => {
        const query = new URL(request.url, "http://console").searchParams
        const lanes = need(
          state.lanes,
          "this runner does not hold the lease (yet): it reads nothing"
        )
        // No sink: every event read.
        const name = query.get("sink")
        const lane = name === null ? { accepts: () => true } : lanes.find((l) => l.name === name)
        if (lane === undefined)
          throw new Refused(
            404,
            `no running sink named ${JSON.stringify(name)} (running: ${lanes.map((l) => l.name).join(", ")})`
          )
        const pattern = query.get("events") || undefined
        if (pattern !== undefined && EventPattern.expand([pattern]).length === 0)
          throw new Refused(400, `events: ${JSON.stringify(pattern)} matches no event type`)
        const encoder = new TextEncoder()
        // A comment first, so a client knows it is listening; then one every 15 s
        // so proxies keep the connection open.
        const events = state.tap
          .listen(lane.accepts, pattern)
          .pipe(
            Stream.map((e) => `data: ${JSON.stringify(Schema.encodeSync(Api.TapEvent)(e))}\n\n`)
          )
        const keepAlive = Stream.tick("15 seconds").pipe(Stream.map(() => ": keep-alive\n\n"))
        const what = name === null ? "every event" : `sink ${name}`
        return Effect.logInfo(
          `console (${who}): tapping ${what}${pattern === undefined ? "" : ` (${pattern})`}`
        ).pipe(
          Effect.as(
            HttpServerResponse.stream(
              Stream.concat(
                Stream.succeed(`: tapping ${what}\n\n`),
                Stream.merge(events, keepAlive.pipe(Stream.drop(1)))
              ).pipe(Stream.map((text) => encoder.encode(text))),
              {
                contentType: "text/event-stream",
                headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
              }
            )
          )
        )
      })
    ),
    HttpRouter.add(
      "POST",
      "/console/api/dead-letters/retry",
      api(settings, (request, who) =>
        Effect.gen(function* () {
          checkAction(request)
          const store = need(state.store, "the state store is not open yet")
          const cluster = state.cluster
          const lanes =
            cluster !== undefined
              ? []
              : need(
                  state.lanes,
                  "this runner does not hold the lease (yet): retry from the one that does"
                )
          const { ids } = yield* body(request)
          const letters = yield* store.deadLetters({ ids })
          const missing = ids.filter((id) => !letters.some((l) => l.id === id))
          if (missing.length > 0)
            throw new Refused(
              404,
              `no dead letter with id ${missing.join(", ")}; nothing was changed`
            )
          // A sink that could not start says why in its metrics.
          const unavailable = new Map(
            [...state.metrics.sinks].map(([name, m]) => [name, m.error ?? m.state])
          )
          const outcomes =
            cluster === undefined
              ? yield* retryLetters(store, { lanes, unavailable }, letters)
              : yield* Effect.scoped(
                  cluster
                    .destinations(letters)
                    .pipe(Effect.flatMap((made) => retryLetters(store, made, letters)))
                )
          const delivered = outcomes.filter((o) => o.delivered).length
          yield* Effect.logInfo(
            `console (${who}): retried dead letters ${ids.join(", ")}: ${delivered} delivered, ${outcomes.length - delivered} still failing`
          )
          return yield* answer(Api.RetryResult, {
            outcomes: outcomes.map((o) =>
              o.reason === undefined
                ? { id: o.id, delivered: o.delivered }
                : { ...o, reason: o.reason }
            )
          })
        })
      )
    ),
    HttpRouter.add(
      "POST",
      "/console/api/dead-letters/drop",
      api(settings, (request, who) =>
        Effect.gen(function* () {
          checkAction(request)
          const store = need(state.store, "the state store is not open yet")
          const { ids } = yield* body(request)
          const dropped = yield* store.dropDeadLetters(ids)
          yield* Effect.logInfo(
            `console (${who}): dropped dead letters ${ids.join(", ")} (${dropped} removed)`
          )
          return yield* answer(Api.DropResult, { dropped })
        })
      )
    )
  )
