/**
 * Running the relay from a command (`run`, `demo`; `replay` its own way): signals stop
 * it, and its report is printed after.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type { RelayConfig } from "../../config/Schema.ts"
import { formatMillis } from "../../internal/Text.ts"
import type { Metrics } from "../../Observability.ts"
import * as Runner from "../../Runner.ts"
import { table } from "../shared.ts"

const err = (text: string) => Effect.sync(() => process.stderr.write(`${text}\n`))

/**
 * A stop for the scope's run: the first SIGINT/SIGTERM completes it (stop fetching,
 * finish the batches in flight), a second exits at once. The handlers go with the scope.
 * The "stopping" line is logged through the run's logger, so it follows `log.format`.
 */
export const stopOnSignals = Effect.gen(function* () {
  const stop = yield* Deferred.make<void>()
  const log = Effect.runSyncWith(yield* Effect.context<never>())
  let signals = 0
  const onSignal = (signal: string) => {
    signals++
    if (signals > 1) {
      process.stderr.write(`\n${signal} again: exiting now\n`)
      process.exit(130)
    }
    log(
      Effect.logInfo(
        `${signal}: stopping; finishing in-flight batches (${signal} again to exit now)`
      )
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
export const runWithSignals = (
  config: RelayConfig,
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
    const runOptions = { stop, summary: options.summary, metrics: options.metrics }
    if (config.cluster === undefined) return yield* Runner.run(config, runOptions)
    // Loaded only in cluster mode: effect/cluster is not needed otherwise.
    const Cluster = yield* Effect.promise(() => import("../../cluster/Cluster.ts"))
    return yield* Cluster.run(config, runOptions)
  }).pipe(Effect.scoped)

/** The run's report, on stderr: stdout is the data (a console sink's JSON lines). */
export const printReport = (report: Runner.RunReport) =>
  Effect.gen(function* () {
    const m = report.metrics
    yield* err(
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
    yield* err(table(rows))
  })
