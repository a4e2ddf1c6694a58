/**
 * `workos-relay status`: per sink its cursor, lag and dead letters; who holds the lease.
 * What the command does; its flags and help are in ../status.ts, which loads
 * this module only when the command runs (`--help` does without it).
 */
import { EventStream, type WorkOS } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { load } from "../../config/Load.ts"
import {
  type RelayConfig,
  type SinkConfig,
  type Source,
  sourcesOf,
  sourcesOfSink
} from "../../config/Schema.ts"
import { formatMillis } from "../../internal/Text.ts"
import * as Pipeline from "../../Pipeline.ts"
import * as Start from "../../pipeline/Start.ts"
import * as Runner from "../../Runner.ts"
import type * as StateStore from "../../StateStore.ts"
import { errorLogsOnly, interactiveClient, missingStore, out, table, withStore } from "../shared.ts"

export const status = ({ config: file }: { readonly config: string }) =>
  errorLogsOnly(
    Effect.scoped(
      Effect.gen(function* () {
        const config = yield* load(file)
        // One client per WorkOS source, for every question the command asks of it.
        const clients = new Map<string, WorkOS.Service>()
        for (const source of sourcesOf(config))
          if (source.type === "workos")
            clients.set(
              source.name,
              yield* Runner.workosClient({
                apiKey: source.apiKey,
                baseUrl: source.baseUrl,
                maxRequestsPerMinute: source.maxRequestsPerMinute,
                ...interactiveClient
              })
            )
        const stored = yield* readStore(config)
        yield* printStatus(config, clients, stored)
        const catchUp = yield* catchUpLine(config)
        if (catchUp !== undefined) yield* out(catchUp)
      })
    )
  )

/** What the store holds that `status` shows. */
interface Stored {
  readonly description: string
  readonly checkpoints: ReadonlyArray<StateStore.Checkpoint>
  readonly counts: Readonly<Record<string, number>>
  /** Several sources: dead letters by (sink, source), keyed `sink@source`. */
  readonly countsBySource: Readonly<Record<string, number>>
  readonly lease: StateStore.Lease | undefined
  readonly gaps: { readonly total: number; readonly recent: ReadonlyArray<StateStore.RecordedGap> }
  readonly webhooks: StateStore.WebhookSummary | undefined
}

/** How many of the newest gaps `status` lists. */
const GAPS_SHOWN = 3
/** How many overdue announced events `status` lists, the oldest first. */
const OVERDUE_SHOWN = 10
const HOUR = 60 * 60_000
/** `webhooks.overdueAfter`'s default, for a config that no longer has `webhooks`. */
const DEFAULT_OVERDUE_AFTER = 5 * 60_000

const readStore = (config: RelayConfig) => {
  const missing = missingStore(config)
  return missing !== undefined
    ? Effect.succeed<Stored>({
        description: missing,
        checkpoints: [],
        counts: {},
        countsBySource: {},
        lease: undefined,
        gaps: { total: 0, recent: [] },
        webhooks: undefined
      })
    : withStore(config, (store) =>
        Effect.all({
          description: Effect.succeed(store.description),
          checkpoints: store.checkpoints(),
          counts: store.deadLetterCounts(),
          countsBySource: Runner.isLabelled(config)
            ? store.deadLetterCountsBySource()
            : Effect.succeed({}),
          lease: store.lease(),
          gaps: store.gaps(GAPS_SHOWN),
          webhooks: Effect.suspend(() => {
            const now = Date.now()
            return store.webhookSummary({
              since: now - HOUR,
              overdueBefore: now - (config.webhooks?.overdueAfter ?? DEFAULT_OVERDUE_AFTER),
              limit: OVERDUE_SHOWN
            })
          })
        })
      )
}

const printStatus = (
  config: RelayConfig,
  clients: ReadonlyMap<string, WorkOS.Service>,
  stored: Stored
) =>
  Effect.gen(function* () {
    const { description, checkpoints, counts, lease, gaps } = stored
    const now = Date.now()
    yield* out(`state: ${description}`)
    yield* out(leaseLine(lease, now))
    for (const line of gapLines(gaps.total, gaps.recent, now)) yield* out(line)
    for (const line of webhookLines(config, stored.webhooks, now)) yield* out(line)
    // With several sources a row is a lane, a (sink, source); with one, a sink, as always.
    const labelled = Runner.isLabelled(config)
    const rows = [
      [
        "sink",
        ...(labelled ? ["source"] : []),
        "cursor",
        "checkpoint age",
        "lag (events)",
        "lag (time)",
        "dead letters"
      ]
    ]
    const notes = new Set<string>()
    const bySource = new Map<
      string,
      Array<{ checkpoint: StateStore.Checkpoint | undefined; lag: Lag }>
    >()
    for (const sink of config.sinks) {
      for (const source of sourcesOfSink(config, sink)) {
        const c = checkpoints.find((x) => x.sink === sink.name && x.source === source.name)
        const lag = yield* sinkLag(source, clients.get(source.name), sink, c, now)
        if (lag.note !== undefined) notes.add(lag.note)
        const lanes = bySource.get(source.name) ?? []
        lanes.push({ checkpoint: c, lag })
        bySource.set(source.name, lanes)
        rows.push([
          sink.name,
          ...(labelled ? [source.name] : []),
          c?.cursor ?? "(none yet)",
          c === undefined ? "-" : formatMillis(now - c.updatedAt),
          lag.events,
          lag.time,
          String(
            labelled
              ? (stored.countsBySource[`${sink.name}@${source.name}`] ?? 0)
              : (counts[sink.name] ?? 0)
          )
        ])
      }
    }
    if (labelled) yield* out(table(sourceRows(config, bySource)))
    yield* out(table(rows))
    for (const note of notes) yield* out(note)
    if (config.cluster !== undefined && config.state.type === "postgres") {
      // A unit is a source with its lanes: its lag is its lane furthest behind.
      const unitLag = (unit: string) => {
        const lag = furthest(bySource.get(unit) ?? [])
        return lag === undefined ? "-" : `${lag.events} event(s), ${lag.time}`
      }
      const ClusterStatus = yield* Effect.promise(() => import("../../cluster/Status.ts"))
      const view = yield* Effect.result(ClusterStatus.read(config.state.url))
      if (Result.isSuccess(view))
        for (const line of ClusterStatus.lines(view.success, config.cluster, unitLag))
          yield* out(line)
      else yield* out(`cluster: ${view.failure.message}`)
    }
    // A sink taken out of the config (or renamed) keeps its dead letters.
    const orphans = Object.entries(counts).filter(
      ([name, n]) => n > 0 && !config.sinks.some((sink) => sink.name === name)
    )
    for (const [name, n] of orphans)
      yield* out(
        `dead letters of ${name}, a sink not in the config: ${n} (dead-letters list --sink ${name})`
      )
  })

/**
 * Each of several sources: its type and where, how many lanes it feeds, its position
 * (the oldest checkpoint of its lanes: its reader reads on from there) and its lag
 * (its lane furthest behind).
 */
const sourceRows = (
  config: RelayConfig,
  lanes: ReadonlyMap<
    string,
    ReadonlyArray<{ checkpoint: StateStore.Checkpoint | undefined; lag: Lag }>
  >
): Array<Array<string>> => [
  ["source", "type", "lanes", "position", "lag (events)", "lag (time)"],
  ...sourcesOf(config).map((source) => {
    const own = lanes.get(source.name) ?? []
    // Event ids sort by time: the first is the oldest.
    const oldest = own
      .flatMap((l) => (l.checkpoint === undefined ? [] : [l.checkpoint.cursor]))
      .sort()[0]
    const lag = furthest(own)
    return [
      source.name,
      source.type === "workos" ? `workos ${source.baseUrl}` : "demo",
      String(own.length),
      oldest ?? (own.length === 0 ? "-" : "(none yet)"),
      lag?.events ?? "-",
      lag?.time ?? "-"
    ]
  })
]

/** The lag of the lane furthest behind. */
const furthest = (lanes: ReadonlyArray<{ readonly lag: Lag }>): Lag | undefined =>
  lanes.reduce<Lag | undefined>(
    (a, l) => (a === undefined || behind(l.lag) > behind(a) ? l.lag : a),
    undefined
  )

/** How far behind a lag says a lane is, to find the furthest (unknown: last). */
const behind = (lag: Lag): number => {
  const n = Number.parseInt(lag.events, 10)
  return Number.isNaN(n) ? -1 : lag.events.endsWith("+") ? n + 0.5 : n
}

/** The possible gaps the source met (events WorkOS may no longer keep), newest first. */
const gapLines = (
  total: number,
  recent: ReadonlyArray<StateStore.RecordedGap>,
  now: number
): ReadonlyArray<string> =>
  total === 0
    ? ["gaps: none detected"]
    : [
        `gaps: ${total} detected${total > recent.length ? ` (the newest ${recent.length} below)` : ""}`,
        ...recent.map(
          (gap) =>
            `  ${new Date(gap.detectedAt).toISOString()} (${formatMillis(now - gap.detectedAt)} ago, ${gap.action === "stopped" ? "the source stopped there" : "the source went on"}): ${EventStream.describeGap(gap)}`
        )
      ]

/**
 * Push against pull, from the store's webhook table: deliveries in the last hour, how
 * long after its webhook the reader returned each event, and every announced event
 * the reader has not returned after `webhooks.overdueAfter`.
 */
export const webhookLines = (
  config: RelayConfig,
  summary: StateStore.WebhookSummary | undefined,
  now: number
): ReadonlyArray<string> => {
  if (summary === undefined) return []
  const { received, leads, overdue } = summary
  if (config.webhooks === undefined && received === 0 && overdue.total === 0) return []
  const lead =
    leads.length === 0
      ? ""
      : `; the Events API returned ${leads.length} of them ${formatMillis(median(leads))} (median) and ${formatMillis(leads[leads.length - 1]!)} (max) after the webhook`
  const after = formatMillis(config.webhooks?.overdueAfter ?? DEFAULT_OVERDUE_AFTER)
  return [
    `webhooks: ${received} received in the last hour${lead}`,
    ...(overdue.total === 0
      ? []
      : [
          `webhooks: ${overdue.total} announced event(s) not returned by the Events API after ${after} (overdue)${overdue.total > overdue.oldest.length ? `, the oldest ${overdue.oldest.length} below` : ""}:`,
          ...overdue.oldest.map(
            (w) =>
              `  ${w.eventId} (${w.eventType}), announced ${new Date(w.receivedAt).toISOString()} (${formatMillis(now - w.receivedAt)} ago)`
          )
        ])
  ]
}

/** The median of ascending `values` (not empty). */
const median = (values: ReadonlyArray<number>): number => {
  const middle = Math.floor(values.length / 2)
  return values.length % 2 === 1
    ? values[middle]!
    : Math.round((values[middle - 1]! + values[middle]!) / 2)
}

const leaseLine = (lease: StateStore.Lease | undefined, now: number): string =>
  lease === undefined
    ? "lease: nobody holds it"
    : lease.expiresAt > now
      ? `lease: held by ${lease.holder} (token ${lease.token}), renewed until ${new Date(lease.expiresAt).toISOString()}`
      : lease.expiresAt === 0
        ? `lease: free (released by ${lease.holder} as it stopped)`
        : `lease: free (last held by ${lease.holder}, expired ${formatMillis(now - lease.expiresAt)} ago)`

/** The lag of one sink as the table shows it: measured, or why it is not. */
const sinkLag = (
  source: Source,
  client: WorkOS.Service | undefined,
  sink: SinkConfig,
  checkpoint: StateStore.Checkpoint | undefined,
  now: number
): Effect.Effect<Lag> =>
  client === undefined
    ? Effect.succeed({
        events: "-",
        time: "-",
        note: "lag: not measured: a demo source's WorkOS stand-in lives only inside `run`, so there is nothing to compare the checkpoints with"
      })
    : Effect.result(lagOf(source, client, sink, checkpoint, now)).pipe(
        Effect.map(
          (measured): Lag =>
            Result.isSuccess(measured)
              ? measured.success
              : {
                  events: "unknown",
                  time: "unknown",
                  note: `lag: unknown: ${Pipeline.rejectionOf(measured.failure)?.message ?? measured.failure.message}`
                }
        )
      )

/** A sink's lag as `status` shows it, or why it cannot say. */
interface Lag {
  readonly events: string
  readonly time: string
  /** Said under the table when the figures need it. */
  readonly note?: string | undefined
}

/**
 * How far a sink is behind: the events WorkOS holds after `from` that the sink takes
 * (counted over one page: "100+" beyond), and how old the oldest of them is.
 */
const measureLag = (
  client: WorkOS.Service,
  source: Extract<Source, { type: "workos" }>,
  sink: SinkConfig,
  from: Exclude<EventStream.Start, "latest">,
  now: number
): Effect.Effect<Lag, WorkOS.WorkOSError> => {
  const events = Runner.fetchTypes([sink], source.events)
  const after = typeof from === "object" && "after" in from ? from.after : undefined
  const since = typeof from === "object" && "since" in from ? String(from.since) : undefined
  const counts = lagFilter(sink, source, events, after, since)
  return client
    .listEvents({
      order: "asc",
      limit: 100,
      after,
      rangeStart: since,
      events,
      organizationId: source.organization
    })
    .pipe(
      Effect.map((page): Lag => {
        // A server may ignore a filter or a cursor: count only what the sink would get.
        const raws = page.data.map((r) => (Result.isSuccess(r) ? r.success : r.failure.raw) as any)
        const behind = raws.filter(counts)
        const n = behind.length
        const age = n === 0 ? Number.NaN : Date.parse(behind[0]?.created_at)
        return {
          events:
            page.data.length === 100 && page.list_metadata.after !== null ? `${n}+` : String(n),
          time: n === 0 ? "0s" : Number.isNaN(age) ? "-" : formatMillis(Math.max(0, now - age))
        }
      })
    )
}

/** Whether an event of the page is one the sink has still to get, checked on our side. */
const lagFilter = (
  sink: SinkConfig,
  source: Extract<Source, { type: "workos" }>,
  types: ReadonlyArray<string> | undefined,
  after: string | undefined,
  since: string | undefined
) => {
  const accepts = Pipeline.makeFilter(sink.patterns, sink.organizations)
  const fetched = types === undefined ? undefined : new Set(types)
  const sinceMs = since === undefined ? undefined : Date.parse(since)
  return (raw: any): boolean => {
    const type = typeof raw?.event === "string" ? raw.event : undefined
    if (type !== undefined && fetched !== undefined && !fetched.has(type)) return false
    if (!accepts(type, raw)) return false
    const org = Pipeline.organizationOf(raw)
    if (source.organization !== undefined && org !== undefined && org !== source.organization)
      return false
    if (after !== undefined && typeof raw?.id === "string" && raw.id <= after) return false
    if (sinceMs !== undefined && Date.parse(raw?.created_at) < sinceMs) return false
    return true
  }
}

/** The lag of one sink: measured from its checkpoint, or from where it will start. */
const lagOf = (
  config: Source,
  client: WorkOS.Service,
  sink: SinkConfig,
  checkpoint: StateStore.Checkpoint | undefined,
  now: number
): Effect.Effect<Lag, WorkOS.WorkOSError> => {
  const source = config as Extract<Source, { type: "workos" }>
  if (checkpoint !== undefined)
    return measureLag(client, source, sink, Start.fromCheckpoint(checkpoint), now)
  const from = Runner.configuredStart(source.start)
  // `latest` is resolved when the runner first runs: until then nothing is behind.
  if (from === "latest")
    return Effect.succeed({
      events: "-",
      time: "-",
      note: `${sink.name}: no checkpoint yet; its first run starts at the newest event (source.start: latest)`
    })
  return measureLag(client, source, sink, from, now).pipe(
    Effect.map((lag) => ({
      ...lag,
      note: `${sink.name}: no checkpoint yet; lag counted from where it starts (source.start: ${source.start})`
    }))
  )
}

/**
 * The running runner's catch-up, read from its metrics (`http` in the config): slices
 * done, events/s and time left; undefined when it has no metrics address or does not answer.
 */
const catchUpLine = (config: RelayConfig): Effect.Effect<string | undefined> =>
  config.http === undefined
    ? Effect.succeed(undefined)
    : Effect.promise(async () => {
        const { host, port } = config.http!
        try {
          const response = await fetch(
            `http://${host.includes(":") ? `[${host}]` : host}:${port}/metrics`,
            {
              signal: AbortSignal.timeout(2000)
            }
          )
          const text = await response.text()
          const value = (name: string) => {
            const match = new RegExp(`^workos_relay_catch_up_${name} (\\S+)$`, "m").exec(text)
            return match === null ? undefined : Number(match[1])
          }
          if (value("active") === undefined) return undefined
          if (value("active") === 0)
            return "catch-up: none under way (the runner follows the stream)"
          const left = value("seconds_left") ?? -1
          return `catch-up: slices ${value("slices_done")}/${value("slices_total")}, ${value("events_per_second")} events/s, ${left < 0 ? "time left unknown" : `about ${formatMillis(left * 1000)} left`}`
        } catch {
          return undefined
        }
      })
