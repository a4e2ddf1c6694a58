/**
 * `reconcile.every` of a mirror sink: while `run` runs, the tables are compared with
 * WorkOS's lists on that schedule and repaired, as `mirror reconcile` does. The list
 * calls share the key's request budget with the relay's own reader. A failed round is
 * logged and the next one comes on time; the sink's delivery is never held up.
 */

import type { Sink } from "@workos-relay/core"
import { RequestBudget, Text, WorkOS, WorkOSList } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import { FetchHttpClient } from "effect/http"
import * as Redacted from "effect/Redacted"
import * as Lists from "./Lists.ts"
import * as Reconcile from "./Reconcile.ts"
import type { Shape } from "./Store.ts"

/** Rounds done and failed in this process, per sink (for logs and tests). */
export const rounds = new Map<string, { done: number; failed: number }>()

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
    const count = rounds.get(name) ?? { done: 0, failed: 0 }
    rounds.set(name, count)
    while (true) {
      yield* Effect.sleep(ms)
      yield* round(store, lists).pipe(
        Effect.matchEffect({
          onSuccess: (report) => {
            count.done++
            return Effect.logInfo(`mirror ${name}: reconciled: ${Reconcile.summary(report)}`)
          },
          onFailure: (error) => {
            count.failed++
            return Effect.logWarning(`mirror ${name}: reconcile failed: ${error.message}`)
          }
        })
      )
    }
  })
