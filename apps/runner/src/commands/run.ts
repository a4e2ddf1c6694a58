/** `workos-relay run`: relay events until stopped. */
import { Command } from "effect/cli"
import * as Effect from "effect/Effect"
import { load } from "../config/Load.ts"
import type { RelayConfig } from "../config/Schema.ts"
import { Metrics } from "../Observability.ts"
import type * as Runner from "../Runner.ts"
import { printReport, runWithSignals } from "./running.ts"
import { configFlag, RunFailed, withLogs } from "./shared.ts"

/**
 * The live summary line, on a terminal; not when a console sink prints events to the
 * same terminal: its lines are the live view then, and would break into the summary.
 */
export const showSummary = (
  config: RelayConfig,
  terminal: { readonly stdout: boolean; readonly stderr: boolean } = {
    stdout: process.stdout.isTTY === true,
    stderr: process.stderr.isTTY === true
  }
): boolean =>
  terminal.stderr && !(terminal.stdout && config.sinks.some((sink) => sink.type === "console"))

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

export const run = Command.make("run", { config: configFlag }, ({ config: file }) =>
  Effect.gen(function* () {
    const config = yield* load(file)
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
