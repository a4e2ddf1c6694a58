/**
 * The `workos-relay` command (effect/cli): run, validate, status, replay,
 * dead-letters list|retry|drop, config schema, demo. `--help` on every command.
 *
 * Exit codes: 0 ok; 1 a runtime failure (WorkOS, the state store, a lost lease, a
 * sink that stopped); 2 bad usage or a bad config file.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { EventStream, WorkOS } from "@workos-relay/core"
import { Event, Sink, Text } from "@workos-relay/core"
import * as Context from "effect/Context"
import { CliError, Command, Flag, GlobalFlag } from "effect/cli"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Result from "effect/Result"
import * as Config from "./Config.ts"
import { formatMillis } from "./internal/Text.ts"
import { logLayer, Metrics } from "./Observability.ts"
import * as Pipeline from "./Pipeline.ts"
import * as Registry from "./Registry.ts"
import * as Runner from "./Runner.ts"
import * as StateStore from "./StateStore.ts"

/** Bad usage that the flag parser cannot see (a bad date, an unknown sink name): exit code 2. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason
  }
}

/** The run ended with sinks that stopped on errors: exit code 1. */
export class RunFailed extends Data.TaggedError("RunFailed")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason
  }
}

const configFlag = Flag.String("config").pipe(
  Flag.withAlias("c"),
  Flag.withDefault("relay.yaml"),
  Flag.withDescription("The config file (YAML or JSON); default relay.yaml")
)

const out = (text: string) => Effect.sync(() => process.stdout.write(`${text}\n`))

const withStore = <A, E>(
  config: Config.RelayConfig,
  f: (store: StateStore.Service) => Effect.Effect<A, E>
) =>
  Effect.scoped(
    Layer.build(StateStore.layer(config.state)).pipe(
      Effect.flatMap((context) => f(Context.get(context, StateStore.StateStore)))
    )
  )

/**
 * Why the commands that only read the store have nothing to read: a SQLite store that
 * does not exist yet. They say so rather than create it, or a misspelt path would pass
 * for a fresh install.
 */
const missingStore = (config: Config.RelayConfig): string | undefined =>
  config.state.type === "sqlite" &&
  config.state.path !== ":memory:" &&
  !Fs.existsSync(config.state.path)
    ? `no SQLite store at ${config.state.path} yet (\`run\` creates it)`
    : undefined

/**
 * A stop for the scope's run: the first SIGINT/SIGTERM completes it (stop fetching,
 * finish the batches in flight), a second exits at once. The handlers go with the scope.
 */
const stopOnSignals = Effect.gen(function* () {
  const stop = yield* Deferred.make<void>()
  let signals = 0
  const onSignal = (signal: string) => {
    signals++
    if (signals > 1) {
      process.stderr.write(`\n${signal} again: exiting now\n`)
      process.exit(130)
    }
    process.stderr.write(
      `\n${signal}: stopping; finishing in-flight batches (${signal} again to exit now)\n`
    )
    Deferred.doneUnsafe(stop, Effect.void)
  }
  const sigint = () => onSignal("SIGINT")
  const sigterm = () => onSignal("SIGTERM")
  yield* Effect.acquireRelease(
    Effect.sync(() => {
      process.on("SIGINT", sigint)
      process.on("SIGTERM", sigterm)
    }),
    () =>
      Effect.sync(() => {
        process.off("SIGINT", sigint)
        process.off("SIGTERM", sigterm)
      })
  )
  return stop
})

/** Runs with signals: the first SIGINT/SIGTERM stops gracefully, a second exits at once. */
const runWithSignals = (
  config: Config.RelayConfig,
  options: {
    readonly summary: boolean
    readonly duration?: number | undefined
    readonly metrics?: Metrics | undefined
  }
) =>
  Effect.gen(function* () {
    const stop = yield* stopOnSignals
    if (options.duration !== undefined && options.duration > 0) {
      yield* Effect.sleep(options.duration).pipe(
        Effect.andThen(Deferred.succeed(stop, undefined)),
        Effect.forkScoped
      )
    }
    return yield* Runner.run(config, { stop, summary: options.summary, metrics: options.metrics })
  }).pipe(Effect.scoped)

const printReport = (report: Runner.RunReport) =>
  Effect.gen(function* () {
    const m = report.metrics
    yield* out(
      `\nSummary after ${formatMillis(report.elapsedMs)}: ${m.fetched} events fetched from WorkOS`
    )
    const rows = [["sink", "delivered", "retried", "dead-lettered", "filtered", "state"]]
    for (const [name, s] of m.sinks) {
      rows.push([
        name,
        String(s.delivered),
        String(s.retried),
        String(s.deadLettered),
        String(s.filtered),
        s.state === "failed"
          ? `failed: ${s.error}`
          : s.state === "interrupted"
            ? "interrupted at shutdown (its batch is delivered again next start)"
            : s.state
      ])
    }
    yield* out(table(rows))
  })

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)))
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd()
    )
    .join("\n")
}

const failIfLanesFailed = (report: Runner.RunReport) => {
  const failed = report.lanes.filter(
    (l) => l.error !== undefined && l.error !== "interrupted at shutdown"
  )
  return failed.length === 0
    ? Effect.void
    : Effect.fail(
        new RunFailed({
          reason: `sink(s) stopped on errors: ${failed.map((l) => `${l.name}: ${l.error}`).join("; ")}`
        })
      )
}

/** Logs as the config file says; `--log-level` on the command line wins over its level. */
const withLogs =
  (config: Config.RelayConfig) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.gen(function* () {
      const flag = yield* GlobalFlag.LogLevel
      return yield* Effect.provide(
        effect,
        logLayer({ ...config.log, override: Option.getOrUndefined(flag) })
      )
    })

/**
 * The live summary line, on a terminal; not when a console sink prints events to the
 * same terminal: its lines are the live view then, and would break into the summary.
 */
export const showSummary = (
  config: Config.RelayConfig,
  terminal: { readonly stdout: boolean; readonly stderr: boolean } = {
    stdout: process.stdout.isTTY === true,
    stderr: process.stderr.isTTY === true
  }
): boolean =>
  terminal.stderr && !(terminal.stdout && config.sinks.some((sink) => sink.type === "console"))

// ---------------------------------------------------------------------------
// Commands

const run = Command.make("run", { config: configFlag }, ({ config: file }) =>
  Effect.gen(function* () {
    const config = yield* Config.load(file)
    const metrics = new Metrics()
    const started = Date.now()
    const report = yield* runWithSignals(config, {
      summary: showSummary(config),
      metrics
    }).pipe(
      withLogs(config),
      // WorkOS refused us: show what was delivered (and committed) before; the error follows.
      Effect.tapErrorTag("SourceRejected", () =>
        printReport({ lanes: [], metrics, elapsedMs: Date.now() - started })
      )
    )
    yield* printReport(report)
    yield* failIfLanesFailed(report)
  })
).pipe(
  Command.withDescription(
    "Relay events from WorkOS to the sinks of a config file until stopped (SIGINT/SIGTERM)"
  )
)

/**
 * A command someone waits on (`status`, `validate --check-connections`) asks WorkOS
 * twice, 10 s each at most (a firewall that drops packets leaves a connection hanging),
 * where `run` keeps retrying for about two minutes, 30 s an attempt.
 */
const interactiveClient = { retry: { times: 1 }, timeout: "10 seconds" } as const

/**
 * For commands whose own lines say what failed (`validate`, `status`): the warnings
 * logged on the way (a retry, a sink that could not check its token) would say it
 * twice. `--log-level` shows them again.
 */
const errorLogsOnly = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const flag = yield* GlobalFlag.LogLevel
    return yield* Option.isSome(flag)
      ? effect
      : Effect.provideService(effect, References.MinimumLogLevel, "Error")
  })

const validate = Command.make(
  "validate",
  {
    config: configFlag,
    checkConnections: Flag.Boolean("check-connections").pipe(
      Flag.withDefault(false),
      Flag.withDescription("Also reach WorkOS, the state store and every sink")
    )
  },
  ({ config: file, checkConnections }) =>
    errorLogsOnly(
      Effect.gen(function* () {
        const config = yield* Config.load(file)
        yield* out(
          `${file}: ok (${config.sinks.length} sink(s): ${config.sinks.map((s) => `${s.name} (${s.type})`).join(", ")})`
        )
        if (!checkConnections) return
        const problems: Array<string> = []
        const check = (label: string, effect: Effect.Effect<unknown, unknown, any>) =>
          Effect.result(Effect.scoped(effect as Effect.Effect<unknown, unknown, never>)).pipe(
            Effect.flatMap((r) => {
              if (Result.isSuccess(r)) return out(`  ok    ${label}`)
              const reason =
                Pipeline.rejectionOf(r.failure)?.message ??
                (r.failure as any)?.message ??
                String(r.failure)
              problems.push(`${label}: ${reason}`)
              return out(`  FAIL  ${label}: ${reason}`)
            })
          )
        yield* check(
          `state store (${config.state.type})`,
          withStore(config, (s) => s.lease())
        )
        yield* check(
          "WorkOS",
          Runner.openSource(config.source, config.sinks, interactiveClient).pipe(
            Effect.flatMap((s) => s.client.listEvents({ limit: 1 }))
          )
        )
        yield* Effect.scoped(
          Effect.gen(function* () {
            for (const m of yield* Runner.makeSinks(config.sinks, { checkOnly: true })) {
              const label = `sink ${m.config.name}`
              if (m.sink === undefined) {
                problems.push(`${label}: ${m.error}`)
                yield* out(`  FAIL  ${label}: ${m.error}`)
              } else if (m.sink.check === undefined) {
                yield* out(
                  `  ok    ${label} (made; sink type ${m.config.type} has no connection check)`
                )
              } else {
                yield* check(label, m.sink.check)
              }
            }
          })
        )
        if (problems.length > 0)
          return yield* Effect.fail(
            new RunFailed({ reason: `${problems.length} connection check(s) failed` })
          )
      })
    )
).pipe(
  Command.withDescription("Check a config file (and, with --check-connections, what it points at)")
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
  source: Extract<Config.Source, { type: "workos" }>,
  sink: Config.SinkConfig,
  from: Exclude<EventStream.Start, "latest">,
  now: number
): Effect.Effect<Lag, WorkOS.WorkOSError> => {
  const events = Runner.fetchTypes([sink], source.events)
  return client
    .listEvents({
      order: "asc",
      limit: 100,
      after: typeof from === "object" && "after" in from ? from.after : undefined,
      rangeStart: typeof from === "object" && "since" in from ? from.since : undefined,
      events,
      organizationId: source.organization
    })
    .pipe(
      Effect.map((page): Lag => {
        const n = page.data.length
        const first = page.data[0]
        const createdAt =
          first === undefined
            ? undefined
            : Result.isSuccess(first)
              ? first.success.created_at
              : (first.failure.raw as { created_at?: unknown } | undefined)?.created_at
        const age = typeof createdAt === "string" ? Date.parse(createdAt) : Number.NaN
        return {
          events: n === 100 && page.list_metadata.after !== null ? "100+" : String(n),
          time: n === 0 ? "0s" : Number.isNaN(age) ? "-" : formatMillis(Math.max(0, now - age))
        }
      })
    )
}

/** The lag of one sink: measured from its checkpoint, or from where it will start. */
const lagOf = (
  config: Config.RelayConfig,
  client: WorkOS.Service,
  sink: Config.SinkConfig,
  checkpoint: StateStore.Checkpoint | undefined,
  now: number
): Effect.Effect<Lag, WorkOS.WorkOSError> => {
  const source = config.source as Extract<Config.Source, { type: "workos" }>
  if (checkpoint !== undefined)
    return measureLag(client, source, sink, { after: checkpoint.cursor }, now)
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

const status = Command.make("status", { config: configFlag }, ({ config: file }) =>
  errorLogsOnly(
    Effect.scoped(
      Effect.gen(function* () {
        const config = yield* Config.load(file)
        // One client for every question the command asks.
        const client =
          config.source.type === "workos"
            ? yield* Runner.workosClient({
                apiKey: config.source.apiKey,
                baseUrl: config.source.baseUrl,
                ...interactiveClient
              })
            : undefined
        const missing = missingStore(config)
        const { description, checkpoints, counts, lease } =
          missing !== undefined
            ? { description: missing, checkpoints: [], counts: {}, lease: undefined }
            : yield* withStore(config, (store) =>
                Effect.all({
                  description: Effect.succeed(store.description),
                  checkpoints: store.checkpoints(),
                  counts: store.deadLetterCounts(),
                  lease: store.lease()
                })
              )
        yield* Effect.gen(function* () {
          const now = Date.now()
          yield* out(`state: ${description}`)
          yield* out(
            lease === undefined
              ? "lease: nobody holds it"
              : lease.expiresAt > now
                ? `lease: held by ${lease.holder} (token ${lease.token}), renewed until ${new Date(lease.expiresAt).toISOString()}`
                : lease.expiresAt === 0
                  ? `lease: free (released by ${lease.holder} as it stopped)`
                  : `lease: free (last held by ${lease.holder}, expired ${formatMillis(now - lease.expiresAt)} ago)`
          )
          const rows = [
            ["sink", "cursor", "checkpoint age", "lag (events)", "lag (time)", "dead letters"]
          ]
          const notes = new Set<string>()
          for (const sink of config.sinks) {
            const c = checkpoints.find((x) => x.sink === sink.name)
            let lag: Lag
            if (client === undefined) {
              lag = { events: "-", time: "-" }
              notes.add(
                "lag: not measured: a demo source's WorkOS stand-in lives only inside `run`, so there is nothing to compare the checkpoints with"
              )
            } else {
              const measured = yield* Effect.result(lagOf(config, client, sink, c, now))
              lag = Result.isSuccess(measured)
                ? measured.success
                : {
                    events: "unknown",
                    time: "unknown",
                    note: `lag: unknown: ${Pipeline.rejectionOf(measured.failure)?.message ?? measured.failure.message}`
                  }
            }
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
          // A sink taken out of the config (or renamed) keeps its dead letters.
          const orphans = Object.entries(counts).filter(
            ([name, n]) => n > 0 && !config.sinks.some((sink) => sink.name === name)
          )
          for (const [name, n] of orphans)
            yield* out(
              `dead letters of ${name}, a sink not in the config: ${n} (dead-letters list --sink ${name})`
            )
        })
      })
    )
  )
).pipe(
  Command.withDescription(
    "Per sink: cursor, lag in events and time, dead letters; and who holds the lease"
  )
)

const parseTime = (flag: string, value: string) => {
  const t = Text.parseInstant(value)
  return t === undefined
    ? Effect.fail(
        new UsageError({
          reason: `--${flag}: expected an ISO-8601 time such as 2026-11-01T00:00:00Z or a duration ago (24h, 7d), got "${value}"`
        })
      )
    : Effect.succeed(t.getTime())
}

const chooseSinks = (config: Config.RelayConfig, names: Option.Option<string>) => {
  if (Option.isNone(names)) return Effect.succeed(config.sinks)
  const wanted = names.value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
  const known = config.sinks.map((s) => s.name).join(", ")
  if (wanted.length === 0)
    return Effect.fail(
      new UsageError({ reason: `--sink: give one or more sink names (sinks: ${known})` })
    )
  const unknown = wanted.filter((n) => !config.sinks.some((s) => s.name === n))
  return unknown.length > 0
    ? Effect.fail(
        new UsageError({
          reason: `--sink: no sink named ${unknown.join(", ")} in the config (sinks: ${known})`
        })
      )
    : Effect.succeed(config.sinks.filter((s) => wanted.includes(s.name)))
}

const replay = Command.make(
  "replay",
  {
    config: configFlag,
    since: Flag.String("since").pipe(
      Flag.withDescription(
        'Events created at or after this time: ISO-8601, or a duration ago ("24h", "7d")'
      )
    ),
    until: Flag.String("until").pipe(
      Flag.optional,
      Flag.withDescription(
        'Events created before this time: ISO-8601, or a duration ago ("1h"); default now'
      )
    ),
    sink: Flag.String("sink").pipe(
      Flag.optional,
      Flag.withDescription("Sink name(s), comma-separated (default every sink)")
    )
  },
  ({ config: file, since, until, sink }) =>
    Effect.gen(function* () {
      const config = yield* Config.load(file)
      const from = yield* parseTime("since", since)
      const to = Option.isSome(until) ? yield* parseTime("until", until.value) : Date.now()
      if (to <= from)
        return yield* Effect.fail(
          new UsageError({
            reason: `--until ${new Date(to).toISOString()} is not after --since ${new Date(from).toISOString()}: no event can be in that range`
          })
        )
      const sinks = yield* chooseSinks(config, sink)
      const metrics = new Metrics()
      let stopped = false
      const reports = yield* Effect.scoped(
        Effect.gen(function* () {
          const stop = yield* stopOnSignals
          yield* Deferred.await(stop).pipe(
            Effect.andThen(
              Effect.sync(() => {
                stopped = true
              })
            ),
            Effect.forkScoped
          )
          const store = Context.get(
            yield* Layer.build(StateStore.layer(config.state)),
            StateStore.StateStore
          )
          const opened = yield* Runner.openSource(config.source, sinks)
          const made = yield* Runner.makeSinks(sinks)
          const lanes = made
            .filter((m) => m.sink !== undefined)
            .map((m) => Runner.laneSpec(m as any))
          return yield* Pipeline.run({
            lanes,
            source: opened.source,
            store,
            token: () => null,
            metrics,
            start: { since: new Date(from).toISOString() },
            mode: { _tag: "replay", until: to },
            stop,
            shutdownTimeout: config.shutdownTimeout
          })
        })
      ).pipe(withLogs(config))
      yield* out(
        `Replayed events created from ${new Date(from).toISOString()} to ${new Date(to).toISOString()} (live checkpoints untouched):`
      )
      yield* out(
        table([
          ["sink", "delivered", "dead-lettered", "error"],
          ...reports.map((r) => [
            r.name,
            String(r.delivered),
            String(r.deadLettered),
            r.error ?? ""
          ])
        ])
      )
      if (stopped)
        return yield* Effect.fail(
          new RunFailed({
            reason:
              "replay stopped by a signal before the end of its range; run it again to deliver the rest"
          })
        )
    })
).pipe(
  Command.withDescription(
    "Deliver again the events of a time range to chosen sinks, without moving live cursors"
  )
)

const idsFlag = Flag.String("id").pipe(
  Flag.optional,
  Flag.withDescription("Dead letter id(s), comma-separated")
)
const sinkFlag = Flag.String("sink").pipe(
  Flag.optional,
  Flag.withDescription("Only this sink's dead letters")
)
/**
 * A `--sink` that names no sink of the config and has no dead letters is most likely
 * misspelt. (A sink removed from the config can still have dead letters: those are
 * listed, retried and dropped as usual.)
 */
const checkDeadLetterSink = (
  config: Config.RelayConfig,
  sink: Option.Option<string>,
  found: number
) => {
  if (Option.isNone(sink) || found > 0 || config.sinks.some((s) => s.name === sink.value))
    return Effect.void
  const names = config.sinks.map((s) => s.name)
  const [hint] = Text.closest(sink.value, names)
  return Effect.fail(
    new UsageError({
      reason: `--sink: no sink named ${sink.value} in the config${hint === undefined ? "" : `; did you mean ${hint}?`} (sinks: ${names.join(", ")}), and no dead letters of it in the store`
    })
  )
}

const parseIds = (ids: Option.Option<string>) =>
  Option.isNone(ids)
    ? Effect.succeed(undefined)
    : Effect.forEach(ids.value.split(","), (s) =>
        /^\d+$/.test(s.trim())
          ? Effect.succeed(Number(s.trim()))
          : Effect.fail(new UsageError({ reason: `--id: expected numbers, got "${s}"` }))
      )

/** `--id`s that name no dead letter (of `--sink`, when given) are most likely a typo. */
const checkIds = (ids: ReadonlyArray<number> | undefined, found: ReadonlyArray<{ id: number }>) => {
  const missing = (ids ?? []).filter((id) => !found.some((l) => l.id === id))
  return missing.length === 0
    ? Effect.void
    : Effect.fail(
        new UsageError({
          reason: `--id: no dead letter with id ${missing.join(", ")}${found.length > 0 ? "; nothing was changed" : ""} (dead-letters list shows the ids)`
        })
      )
}

const deadLettersList = Command.make(
  "list",
  {
    config: configFlag,
    sink: sinkFlag,
    limit: Flag.Int("limit").pipe(Flag.withDefault(50), Flag.withDescription("At most this many"))
  },
  ({ config: file, sink, limit }) =>
    Effect.gen(function* () {
      if (limit < 1)
        return yield* Effect.fail(
          new UsageError({ reason: `--limit: expected a whole number of at least 1, got ${limit}` })
        )
      const config = yield* Config.load(file)
      const missing = missingStore(config)
      if (missing !== undefined) {
        yield* checkDeadLetterSink(config, sink, 0)
        return yield* out(`no dead letters: ${missing}`)
      }
      const letters = yield* withStore(config, (s) =>
        s.deadLetters({ sink: Option.getOrUndefined(sink), limit })
      )
      yield* checkDeadLetterSink(config, sink, letters.length)
      if (letters.length === 0) return yield* out("no dead letters")
      yield* out(
        table([
          ["id", "sink", "event", "type", "attempts", "last failure", "error"],
          ...letters.map((l) => [
            String(l.id),
            l.sink,
            l.eventId,
            l.eventType,
            String(l.attempts),
            new Date(l.lastFailure).toISOString(),
            l.error.slice(0, 120)
          ])
        ])
      )
    })
).pipe(Command.withDescription("List dead letters"))

const deadLettersRetry = Command.make(
  "retry",
  { config: configFlag, sink: sinkFlag, id: idsFlag },
  ({ config: file, sink, id }) =>
    Effect.gen(function* () {
      const config = yield* Config.load(file)
      const ids = yield* parseIds(id)
      const missing = missingStore(config)
      if (missing !== undefined) {
        yield* checkDeadLetterSink(config, sink, 0)
        yield* checkIds(ids, [])
        return yield* out(`no dead letters: ${missing}`)
      }
      const summary = yield* Effect.scoped(
        Effect.gen(function* () {
          const store = Context.get(
            yield* Layer.build(StateStore.layer(config.state)),
            StateStore.StateStore
          )
          const letters = yield* store.deadLetters({ sink: Option.getOrUndefined(sink), ids })
          yield* checkDeadLetterSink(config, sink, letters.length)
          yield* checkIds(ids, letters)
          const made = yield* Runner.makeSinks(config.sinks)
          const metrics = new Metrics()
          let delivered = 0
          let failed = 0
          for (const letter of letters) {
            const m = made.find((x) => x.config.name === letter.sink)
            if (m?.sink === undefined) {
              failed++
              yield* out(
                `  ${letter.id}: sink ${letter.sink} is ${m === undefined ? "not in the config" : `unavailable: ${m.error}`}`
              )
              continue
            }
            // As stored: an event that broke its schema goes as WorkOS sent it (retrying
            // it is the operator's call), marked as a run marks it, so a raw sink records
            // where it breaks the spec. Something that is not JSON cannot go at all.
            let event: unknown
            try {
              event = JSON.parse(letter.event)
            } catch {
              failed++
              yield* out(`  ${letter.id}: still failing: not JSON, cannot be delivered`)
              continue
            }
            const decoded = Event.decode(event)
            if (Result.isFailure(decoded)) event = Sink.mismatched(decoded.failure) ?? event
            const spec = Runner.laneSpec(m as Runner.MadeSink & { sink: Sink.Sink })
            // One short round of retries: the dead letter stays if it still fails.
            const result = yield* Effect.result(
              Pipeline.deliver(
                {
                  ...spec,
                  retry: { ...spec.retry, maxDuration: Math.min(spec.retry.maxDuration, 10_000) }
                },
                [event],
                metrics,
                Date.now()
              )
            )
            if (Result.isSuccess(result) && result.success.delivered === 1) {
              yield* store.dropDeadLetters([letter.id])
              delivered++
            } else {
              failed++
              const reason = Result.isSuccess(result)
                ? (result.success.deadLetters[0]?.error ?? "not delivered")
                : result.failure.reason
              yield* store.updateDeadLetter(letter.id, reason, letter.attempts + 1, Date.now())
              yield* out(`  ${letter.id}: still failing: ${reason}`)
            }
          }
          return { delivered, failed }
        })
      ).pipe(withLogs(config))
      yield* out(
        `retried: ${summary.delivered} delivered and removed, ${summary.failed} still dead-lettered`
      )
      if (summary.failed > 0)
        return yield* Effect.fail(
          new RunFailed({ reason: `${summary.failed} dead letter(s) could not be delivered` })
        )
    })
).pipe(Command.withDescription("Deliver dead letters again; those delivered are removed"))

const deadLettersDrop = Command.make(
  "drop",
  {
    config: configFlag,
    sink: sinkFlag,
    id: idsFlag,
    all: Flag.Boolean("all").pipe(
      Flag.withDefault(false),
      Flag.withDescription("Drop every dead letter (of --sink when given)")
    )
  },
  ({ config: file, sink, id, all }) =>
    Effect.gen(function* () {
      const config = yield* Config.load(file)
      const ids = yield* parseIds(id)
      if ((ids === undefined) === !all)
        return yield* Effect.fail(
          new UsageError({ reason: "dead-letters drop: give either --id <ids> or --all" })
        )
      const missing = missingStore(config)
      if (missing !== undefined) {
        yield* checkDeadLetterSink(config, sink, 0)
        yield* checkIds(ids, [])
        return yield* out(`no dead letters: ${missing}`)
      }
      const dropped = yield* withStore(config, (s) =>
        s.deadLetters({ sink: Option.getOrUndefined(sink), ids }).pipe(
          Effect.tap((letters) => checkDeadLetterSink(config, sink, letters.length)),
          Effect.tap((letters) => checkIds(ids, letters)),
          Effect.flatMap((letters) => s.dropDeadLetters(letters.map((l) => l.id)))
        )
      )
      yield* out(`dropped ${dropped} dead letter(s)`)
    })
).pipe(Command.withDescription("Delete dead letters"))

const deadLetters = Command.make("dead-letters").pipe(
  Command.withDescription("List, retry or drop dead letters"),
  Command.withSubcommands([deadLettersList, deadLettersRetry, deadLettersDrop])
)

const configSchema = Command.make("schema", {}, () =>
  Effect.gen(function* () {
    const definitions: Array<Sink.Definition> = [...Object.values(Registry.builtins)]
    for (const type of Object.keys(Registry.packages)) {
      const resolved = yield* Effect.result(Registry.resolve({ type }, process.cwd()))
      if (Result.isSuccess(resolved)) definitions.push(resolved.success)
      else process.stderr.write(`note: ${resolved.failure}; its options are not in the schema\n`)
    }
    yield* out(JSON.stringify(Config.jsonSchema(definitions), null, 2))
  })
).pipe(Command.withDescription("Print a JSON Schema of the config file, sinks included"))

const configCommand = Command.make("config").pipe(
  Command.withDescription("About the config file"),
  Command.withSubcommands([configSchema])
)

const demo = Command.make(
  "demo",
  {
    duration: Flag.String("duration").pipe(
      Flag.withDefault("20s"),
      Flag.withDescription('How long to run ("20s"; 0 runs until Ctrl-C)')
    ),
    rate: Flag.Finite("rate").pipe(
      Flag.withDefault(4),
      Flag.withDescription("New events per second (0: only the first one of every type)")
    )
  },
  ({ duration, rate }) =>
    Effect.gen(function* () {
      // A bare number would be milliseconds: `--duration 30` surely means seconds.
      if (/^\s*\d+(?:\.\d+)?\s*$/.test(duration) && Number(duration) !== 0)
        return yield* Effect.fail(
          new UsageError({
            reason: `--duration: give a unit, as "${duration.trim()}s" or "${duration.trim()}m" (0 runs until Ctrl-C)`
          })
        )
      const ms = Text.parseDuration(duration)
      if (ms === undefined)
        return yield* Effect.fail(
          new UsageError({ reason: `--duration: expected "20s", "2m" or 0, got "${duration}"` })
        )
      if (rate < 0)
        return yield* Effect.fail(
          new UsageError({ reason: `--rate: expected 0 or more new events a second, got ${rate}` })
        )
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "workos-relay-demo-"))
      const config = yield* Config.decode(
        Config.demo({ statePath: Path.join(dir, "state.db"), rate }),
        { file: "(demo)", baseDir: dir }
      )
      yield* out(
        `workos-relay demo: a WorkOS stand-in on 127.0.0.1 with one event of every type, then ${rate} new event(s) a second,\nread through the real WorkOS client into the console sink, ${ms > 0 ? `for ${formatMillis(ms)}` : "until Ctrl-C"}.\n`
      )
      const report = yield* runWithSignals(config, { summary: false, duration: ms }).pipe(
        withLogs({ ...config, log: { level: "warn", format: "auto" } })
      )
      yield* printReport(report)
      Fs.rmSync(dir, { recursive: true, force: true })
      yield* out(
        "\nTo relay your own WorkOS events: write a relay.yaml (see examples/relay.yaml), then\n  WORKOS_API_KEY=sk_... workos-relay run --config relay.yaml"
      )
    })
).pipe(
  Command.withDescription(
    "Run the whole relay against an in-process WorkOS stand-in (no config, no API key)"
  )
)

/**
 * `workos-relay audit verify|query` come with @workos-relay/sink-audit-log; without
 * it, `audit` says what to install.
 */
// Typed loosely on purpose: the audit package is optional, so its types must not leak here.
type AuditCommand = Command.Command<"audit", any, any, any, never>

export const loadAuditCommand = async (): Promise<AuditCommand> => {
  try {
    return (await import("@workos-relay/sink-audit-log/Cli")).audit
  } catch (error) {
    if ((error as { code?: string }).code !== "ERR_MODULE_NOT_FOUND") throw error
    return Command.make("audit", {}, () =>
      Effect.fail(
        new UsageError({
          reason:
            "the audit commands come with the audit-log sink: npm install @workos-relay/sink-audit-log"
        })
      )
    ).pipe(
      Command.withDescription(
        "Verify and query audit-log sinks (needs @workos-relay/sink-audit-log)"
      )
    )
  }
}

export const makeRoot = (audit: AuditCommand) =>
  Command.make("workos-relay").pipe(
    Command.withDescription(
      "Relay WorkOS events to Slack, EventBridge, audit logs and your own sinks"
    ),
    Command.withSubcommands([
      run,
      validate,
      status,
      replay,
      deadLetters,
      configCommand,
      demo,
      audit
    ])
  )

/**
 * The exit code of an error: 2 for bad usage or config (ours, the audit commands',
 * or effect/cli's parse errors; its `UserError` wraps a failure of the command
 * itself), 1 for the rest.
 */
export const exitCode = (error: unknown): number => {
  const tag = (error as { _tag?: unknown } | null)?._tag
  if (tag === "ConfigError" || tag === "UsageError") return 2
  return CliError.isCliError(error) && error._tag !== "UserError" ? 2 : 1
}
