/**
 * The webhook doorbell in cluster mode. Every runner serves the webhook route (a load
 * balancer stands in front of them all) and keeps each verified delivery in the
 * webhook table, as one runner does. The delivery must wake the reader of each source
 * it concerns, on whichever runner runs that source's unit: it rings the doorbells of
 * those units running here, and tells the other runners with Postgres `NOTIFY` on
 * {@link channel}; each runner `LISTEN`s and rings the doorbells of the units it runs.
 *
 * A notification lost (the listening connection dropped, Postgres restarted) costs
 * latency, never events: the row is in the table, the reader still polls at its
 * interval, and a listener that listens again rings every unit running here at once
 * (a ring is at most a request or two).
 *
 * Overdue announcements: every runner compares the table's pending rows with what
 * its own readers returned (marking those seen) every `min(5s, overdueAfter)`; the
 * runner that runs the config's first unit reports what stays pending past
 * `overdueAfter`, so each is reported once, not once per runner.
 */
import type { PgClient } from "@effect/sql-pg/PgClient"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import { type NamedSource, type RelayConfig, sourcesOf, sourcesOfSink } from "../config/Schema.ts"
import type { Routes } from "../http/Server.ts"
import type { Metrics } from "../Observability.ts"
import * as Runner from "../Runner.ts"
import type { Service as Store } from "../StateStore.ts"
import { Deliveries } from "../webhooks/Deliveries.ts"
import { Doorbell } from "../webhooks/Doorbell.ts"
import * as Ingress from "../webhooks/Ingress.ts"

/** The Postgres channel the runners tell each other of deliveries on. */
export const channel = "workos_relay_doorbell"

/** What the listener needs once Postgres is reached. */
export interface Connected {
  readonly pg: PgClient
  readonly store: Store
}

export interface ClusterWebhooks {
  readonly routes: Routes
  readonly routePath: string
  /** The doorbell of a unit's source on this runner: its reader waits on it. */
  readonly doorbellOf: (unit: string) => Doorbell
  /** Keeps deliveries from now on, listens and watches: Postgres is reached, the store open. */
  readonly start: (connected: Connected) => Effect.Effect<void, never, Scope.Scope>
  /** The unit starts (`true`) or stops running here. */
  readonly running: (unit: string, on: boolean) => void
}

/** A notification's payload: the runner that received the delivery, and the sources it concerns. */
export const payload = (from: string, sources: ReadonlyArray<string>): string =>
  `${from} ${sources.join(",")}`

export const parsePayload = (
  text: string
): { readonly from: string; readonly sources: ReadonlyArray<string> } | undefined => {
  const [from, list, ...rest] = text.split(" ")
  if (from === undefined || list === undefined || rest.length > 0) return undefined
  return { from, sources: list.split(",").filter((s) => s !== "") }
}

/**
 * The sources of a config a delivery concerns: those that read its type (some sink
 * of theirs takes it, their `events` allow it) and whose `organization`, if any, is
 * the event's.
 */
export const concerned = (config: RelayConfig) => {
  const sources = sourcesOf(config).map((source) => {
    const types = typesOf(config, source)
    return {
      name: source.name,
      types: types === undefined ? undefined : new Set(types),
      organization: source.type === "workos" ? source.organization : undefined
    }
  })
  return (announced: Ingress.Announcement): ReadonlyArray<string> =>
    sources
      .filter(
        (s) =>
          (s.types === undefined || s.types.has(announced.type)) &&
          (s.organization === undefined ||
            announced.organizationId === undefined ||
            announced.organizationId === s.organization)
      )
      .map((s) => s.name)
}

/** The event types a source reads for the sinks that take it (undefined: every type). */
const typesOf = (config: RelayConfig, source: NamedSource) => {
  const sinks = config.sinks.filter((sink) =>
    sourcesOfSink(config, sink).some((s) => s.name === source.name)
  )
  return Runner.fetchTypes(sinks, source.type === "workos" ? source.events : undefined)
}

/** The event types any source reads (undefined: every type), for the route's first check. */
const typesRead = (config: RelayConfig): ReadonlyArray<string> | undefined => {
  const all = new Set<string>()
  for (const source of sourcesOf(config)) {
    const types = typesOf(config, source)
    if (types === undefined) return undefined
    for (const t of types) all.add(t)
  }
  return [...all]
}

/** How long the listener waits before listening again after its connection failed. */
const relistenDelayMs = 1_000

/**
 * The doorbell of a runner in a cluster: its route now (deliveries wait for `start`,
 * 503 after a while), its listener and overdue watch from `start`.
 */
export const make = (options: {
  readonly config: RelayConfig
  /** This runner's address, to skip its own notifications. */
  readonly runner: string
  readonly metrics: Metrics
}): Effect.Effect<ClusterWebhooks, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { config, runner, metrics } = options
    const connected = yield* Deferred.make<Connected>()
    let reached: Connected | undefined
    const settings = config.webhooks!
    const scope = yield* Effect.scope
    const units = sourcesOf(config).map((s) => s.name)
    const doorbells = new Map(units.map((name) => [name, new Doorbell(settings, scope)]))
    const here = new Set<string>()
    const deliveries = new Deliveries()
    metrics.webhooks = deliveries
    const concerns = concerned(config)

    /** Rings the doorbells of these sources that run here. */
    const ringHere = (sources: Iterable<string>) =>
      Effect.forEach(
        [...sources].filter((s) => here.has(s)),
        (s) => doorbells.get(s)!.ring(),
        {
          discard: true
        }
      )

    const bell: Ingress.Bell = {
      ring: (announced) =>
        Effect.gen(function* () {
          const sources = concerns(announced)
          if (sources.length === 0) return
          yield* ringHere(sources)
          // The others, unless every one runs here. A failed NOTIFY costs latency only
          // (as one not sent before Postgres is reached: a 503, sent again).
          if (sources.every((s) => here.has(s)) || reached === undefined) return
          yield* reached.pg
            .notify(channel, payload(runner, sources))
            .pipe(
              Effect.catch((e) =>
                Effect.logWarning(
                  `could not tell the other runners of the webhook of event ${announced.id} (they read it at their next poll): ${e.message}`
                )
              )
            )
        })
    }

    const routes = Ingress.routes({
      settings,
      doorbell: bell,
      deliveries,
      types: typesRead(config),
      organizationId: undefined,
      record: (id, type, receivedAt) =>
        Deferred.await(connected).pipe(
          Effect.flatMap(({ store }) => store.recordWebhook(id, type, receivedAt)),
          Effect.timeout(Runner.recordTimeoutMs)
        )
    })

    /*
     * Started once Postgres is reached, in the caller's scope at that point: it closes
     * before the Postgres pool does, which waits for the listener's connection.
     */
    const start = (ready: Connected) =>
      Effect.gen(function* () {
        reached = ready
        yield* Deferred.succeed(connected, ready)
        // The listener: listens again after a failure, then rings every unit running here
        // (what was told while it was away is not told again).
        let listenedBefore = false
        const listen = Effect.scoped(
          Effect.gen(function* () {
            const queue = yield* ready.pg.listen(channel)
            if (listenedBefore) {
              yield* Effect.logInfo(
                `doorbell: listening again for the other runners' webhooks; ringing the ${here.size} unit(s) running here`
              )
              yield* ringHere(here)
            }
            listenedBefore = true
            while (true) {
              const notification = yield* Queue.take(queue)
              const told = parsePayload(notification.payload)
              if (told !== undefined && told.from !== runner) yield* ringHere(told.sources)
            }
          })
        )
        yield* listen.pipe(
          Effect.catchCause((cause) =>
            Cause.hasInterruptsOnly(cause)
              ? Effect.failCause(cause)
              : Effect.logWarning(
                  `doorbell: stopped listening for the other runners' webhooks; listening again in ${relistenDelayMs}ms (meanwhile their deliveries wait for the poll interval)`,
                  cause
                ).pipe(Effect.andThen(Effect.sleep(relistenDelayMs)))
          ),
          Effect.forever,
          Effect.forkScoped
        )

        // The table's pending rows against this runner's reads; the first unit's runner reports.
        const reporter = units[0]!
        yield* Effect.gen(function* () {
          yield* Runner.syncWithStore(ready.store, deliveries)
          if (here.has(reporter)) yield* Runner.reportOverdue(deliveries, settings.overdueAfter)
        }).pipe(
          Effect.andThen(Effect.sleep(Math.min(5_000, settings.overdueAfter))),
          Effect.forever,
          Effect.forkScoped
        )
        yield* ready.store.pruneWebhooks(Date.now() - Runner.webhookKeepMs).pipe(
          Effect.catch((e) => Effect.logWarning(`could not prune the webhook table: ${e.message}`)),
          Effect.andThen(Effect.sleep(60 * 60_000)),
          Effect.forever,
          Effect.forkScoped
        )
      })

    return {
      routes,
      routePath: settings.path,
      start,
      doorbellOf: (unit) => doorbells.get(unit)!,
      running: (unit, on) => {
        if (on) here.add(unit)
        else here.delete(unit)
      }
    }
  })
