/** `workos-relay status`: per sink its cursor, lag and dead letters; who holds the lease. */
import { EventStream, type WorkOS } from "@workos-relay/core"
import { Command } from "effect/cli"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { load } from "../config/Load.ts"
import type { RelayConfig, SinkConfig, Source } from "../config/Schema.ts"
import { formatMillis } from "../internal/Text.ts"
import * as Pipeline from "../Pipeline.ts"
import * as Start from "../pipeline/Start.ts"
import * as Runner from "../Runner.ts"
import type * as StateStore from "../StateStore.ts"
import {
  configFlag,
  errorLogsOnly,
  interactiveClient,
  missingStore,
  out,
  table,
  withStore
} from "./shared.ts"

export const status = Command.make("status", { config: configFlag }, ({ config: file }) =>
  errorLogsOnly(
    Effect.scoped(
      Effect.gen(function* () {
        const config = yield* load(file)
        // One client for every question the command asks.
        const client =
          config.source.type === "workos"
            ? yield* Runner.workosClient({
                apiKey: config.source.apiKey,
                baseUrl: config.source.baseUrl,
                maxRequestsPerMinute: config.source.maxRequestsPerMinute,
                ...interactiveClient
              })
            : undefined
        const stored = yield* readStore(config)
        yield* printStatus(config, client, stored)
        const catchUp = yield* catchUpLine(config)
        if (catchUp !== undefined) yield* out(catchUp)
      })
    )
  )
).pipe(
  Command.withDescription(
    "Per sink: cursor, lag in events and time, dead letters; and who holds the lease"
  )
)

/** What the store holds that `status` shows. */
interface Stored {
  readonly description: string
  readonly checkpoints: ReadonlyArray<StateStore.Checkpoint>
  readonly counts: Readonly<Record<string, number>>
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
        lease: undefined,
        gaps: { total: 0, recent: [] },
        webhooks: undefined
      })
    : withStore(config, (store) =>
        Effect.all({
          description: Effect.succeed(store.description),
          checkpoints: store.checkpoints(),
          counts: store.deadLetterCounts(),
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

const printStatus = (config: RelayConfig, client: WorkOS.Service | undefined, stored: Stored) =>
  Effect.gen(function* () {
    const { description, checkpoints, counts, lease, gaps } = stored
    const now = Date.now()
    yield* out(`state: ${description}`)
    yield* out(leaseLine(lease, now))
    for (const line of gapLines(gaps.total, gaps.recent, now)) yield* out(line)
    for (const line of webhookLines(config, stored.webhooks, now)) yield* out(line)
    const rows = [
      ["sink", "cursor", "checkpoint age", "lag (events)", "lag (time)", "dead letters"]
    ]
    const notes = new Set<string>()
    for (const sink of config.sinks) {
      const c = checkpoints.find((x) => x.sink === sink.name)
      const lag = yield* sinkLag(config, client, sink, c, now)
      if (lag.note !== undefined) notes.add(lag.note)
      rows.push([
        sink.name,
        c?.cursor ?? "(none yet)",
        c === undefined ? "-" : formatMillis(now - c.updatedAt),
        lag.events,
        lag.time,
        String(counts[sink.name] ?? 0)
      ])
    }
    yield* out(table(rows))
    for (const note of notes) yield* out(note)
    if (config.cluster !== undefined && config.state.type === "postgres") {
      // Each unit has every sink today: its lag is its worst sink's.
      const worst = worstLag(rows.slice(1).map((r) => [r[3]!, r[4]!] as const))
      const ClusterStatus = yield* Effect.promise(() => import("../cluster/Status.ts"))
      const view = yield* Effect.result(ClusterStatus.read(config.state.url))
      if (Result.isSuccess(view))
        for (const line of ClusterStatus.lines(view.success, config.cluster, worst))
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

/** The worst of the sinks' lags, as "N events, T" (the time column decides; "-" when none was measured). */
const worstLag = (lags: ReadonlyArray<readonly [string, string]>): string => {
  const measured = lags.filter(([, time]) => time !== "-" && time !== "unknown")
  if (measured.length === 0) return "-"
  // formatMillis's text ("850ms", "4.2s", "3m4s", "2h5m") back to milliseconds.
  const scale: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const millis = (time: string) =>
    [...time.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)].reduce(
      (sum, [, n, unit]) => sum + Number(n) * scale[unit!]!,
      0
    )
  const [events, time] = measured.reduce((a, b) => (millis(b[1]) > millis(a[1]) ? b : a))
  return `${events} event(s), ${time}`
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
  config: RelayConfig,
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
    : Effect.result(lagOf(config, client, sink, checkpoint, now)).pipe(
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
  config: RelayConfig,
  client: WorkOS.Service,
  sink: SinkConfig,
  checkpoint: StateStore.Checkpoint | undefined,
  now: number
): Effect.Effect<Lag, WorkOS.WorkOSError> => {
  const source = config.source as Extract<Source, { type: "workos" }>
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
