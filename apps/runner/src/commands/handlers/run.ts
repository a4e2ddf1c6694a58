/**
 * `workos-relay run`: relay events until stopped.
 * What the command does; its flags and help are in ../run.ts, which loads
 * this module only when the command runs (`--help` does without it).
 */
import * as Effect from "effect/Effect"
import { load } from "../../config/Load.ts"
import { Metrics } from "../../Observability.ts"
import type * as Runner from "../../Runner.ts"
import { showSummary } from "../run.ts"
import { RunFailed, withLogs } from "../shared.ts"
import { printReport, runWithSignals } from "./running.ts"

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

export const run = ({ config: file }: { readonly config: string }) =>
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
