/**
 * `reconcile.every` of a mirror sink: while `run` runs, the tables are compared with
 * WorkOS's lists on that schedule and repaired, as `mirror reconcile` does. The list
 * calls share the key's request budget with the relay's own reader. A failed round is
 * logged and the next one comes on time; the sink's delivery is never held up.
 * Rounds and the drift they repair are counted as effect `Metric`s, which the runner
 * serves on `/metrics`.
 */

import type { Sink } from "@workos-relay/core"
import { RequestBudget, Text, WorkOS, WorkOSList } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import { FetchHttpClient } from "effect/http"
import * as Metric from "effect/Metric"
import * as Redacted from "effect/Redacted"
import * as Lists from "./Lists.ts"
import * as Reconcile from "./Reconcile.ts"
import type { Shape } from "./Store.ts"

/** Scheduled rounds, by `sink` and `outcome` (`done`, `failed`). */
const roundsTotal = Metric.counter("workos_relay_mirror_reconcile_rounds_total", {
  description: "Scheduled reconcile rounds of a mirror sink, by outcome",
  incremental: true
})
/** Rows a scheduled round found out of step with WorkOS and repaired, by `sink` and `table`. */
const driftTotal = Metric.counter("workos_relay_mirror_drift_rows_total", {
  description: "Mirror rows a scheduled reconcile found out of step with WorkOS and repaired",
  incremental: true
})

const countRound = (sink: string, outcome: "done" | "failed") =>
  Metric.update(Metric.withAttributes(roundsTotal, { sink, outcome }), 1)

const countDrift = (sink: string, report: Reconcile.Report) =>
  Effect.forEach(Object.entries(report), ([table, f]) => {
    const rows = f.missing.length + f.changed.length + f.gone.length + f.deletedButListed.length
    return rows === 0
      ? Effect.void
      : Metric.update(Metric.withAttributes(driftTotal, { sink, table }), rows)
  })

/** The rounds a sink has done and failed in this process. */
export const rounds = (sink: string) =>
  Effect.all({
    done: Metric.value(Metric.withAttributes(roundsTotal, { sink, outcome: "done" })),
    failed: Metric.value(Metric.withAttributes(roundsTotal, { sink, outcome: "failed" }))
  }).pipe(Effect.map(({ done, failed }) => ({ done: done.count, failed: failed.count })))

/** One round: list every table, compare, repair; the report. */
const round = (store: Shape, lists: WorkOSList.Lists) =>
  Effect.gen(function* () {
    const listedAt = new Date()
    const listed = yield* Lists.read(lists, Reconcile.reconcilable)
    return yield* Reconcile.reconcile(store, listed, listedAt)
  })

/** Runs forever (fork it in the sink's scope): a round every `every`. */
export const run = (
  name: string,
  store: Shape,
  workos: NonNullable<Sink.Context["workos"]>,
  every: string
) =>
  Effect.gen(function* () {
    const ms = Text.parseDuration(every)!
    const lists = yield* WorkOSList.make({
      ...WorkOS.defaults,
      apiKey: workos.apiKey,
      baseUrl: workos.baseUrl,
      // The same budget as the relay's reader: one per key in the process.
      budget: RequestBudget.forKey(Redacted.value(workos.apiKey), workos.baseUrl, {
        maxPerMinute: workos.maxRequestsPerMinute
      })
    }).pipe(Effect.provide(FetchHttpClient.layer))
    while (true) {
      yield* Effect.sleep(ms)
      yield* round(store, lists).pipe(
        Effect.matchEffect({
          onSuccess: (report) =>
            Effect.all([
              countRound(name, "done"),
              countDrift(name, report),
              Effect.logInfo(`mirror ${name}: reconciled: ${Reconcile.summary(report)}`)
            ]),
          onFailure: (error) =>
            Effect.all([
              countRound(name, "failed"),
              Effect.logWarning(`mirror ${name}: reconcile failed: ${error.message}`)
            ])
        })
      )
    }
  })
