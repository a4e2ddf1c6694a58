/**
 * `reconcile.every`: while the sink runs (made with the WorkOS source, as `run` makes
 * it), the tables are reconciled with the stand-in's lists on that schedule; the
 * option is checked when the config is decoded (what `validate` runs).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { RequestBudget } from "@workos-relay/core"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Effect from "effect/Effect"
import { PrometheusMetrics } from "effect/observability"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Config from "../src/Config.ts"
import * as Reconcile from "../src/Reconcile.ts"
import * as Scheduled from "../src/Scheduled.ts"
import { definition, openStore } from "../src/Sink.ts"
import { history } from "./workload.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirror-scheduled-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const decode = (options: unknown) =>
  Schema.decodeUnknownEffect(Schema.toCodecJson(Config.Config))(options)

describe("reconcile.every", () => {
  it.live("reconciles on its schedule while the sink runs, through the key's budget", () =>
    Effect.gen(function* () {
      const standIn = yield* Effect.acquireRelease(
        Effect.promise(() => WorkOSStandIn.start({ events: 0 })),
        (s) => Effect.promise(() => s.close())
      )
      // Events the sink never gets (as if lost): only a reconcile brings them in.
      standIn.appendUnseen(
        history(400, 7).map((e) => ({ event: e.event, data: (e as { data: unknown }).data }))
      )
      const file = path.join(dir, "scheduled.db")
      const config = yield* decode({ path: file, reconcile: { every: "1s" } })
      yield* definition.make(config, {
        name: "scheduled",
        workos: {
          apiKey: Redacted.make(standIn.apiKey),
          baseUrl: standIn.url,
          maxRequestsPerMinute: 3000
        }
      })
      while ((yield* Scheduled.rounds("scheduled")).done < 1) yield* Effect.sleep("50 millis")
      expect((yield* Scheduled.rounds("scheduled")).failed).toBe(0)
      // Served by the runner on /metrics: the round, and the rows it repaired.
      const metrics = yield* PrometheusMetrics.format()
      expect(metrics).toMatch(
        /workos_relay_mirror_reconcile_rounds_total\{[^}]*sink="scheduled"[^}]*\} [1-9]/
      )
      expect(metrics).toMatch(
        /workos_relay_mirror_drift_rows_total\{[^}]*table="users"[^}]*\} [1-9]/
      )
      const store = yield* openStore({ path: file, prefix: "workos_" })
      const users = (yield* store.rows("users")).filter((r) => r.deletedAt === null)
      expect(users.map((u) => u.id).sort()).toEqual(
        standIn.state
          .objects("users")
          .map((u) => u.id)
          .sort()
      )
      expect(users.length).toBeGreaterThan(0)
      const budget = RequestBudget.forKey(standIn.apiKey, standIn.url).stats()
      expect(budget.maxPerMinute).toBe(3000)
      expect(budget.requests).toBeGreaterThan(7)
      // Not when only checked (`validate --check-connections`).
      yield* definition.make(config, {
        name: "checked",
        checkOnly: true,
        workos: { apiKey: Redacted.make(standIn.apiKey), baseUrl: standIn.url }
      })
      expect(yield* Scheduled.rounds("checked")).toEqual({ done: 0, failed: 0 })
      expect(Reconcile.reconcilable).toContain("directory_group_memberships")
    }).pipe(Effect.scoped)
  )

  it.effect("is checked: a duration from 1s to 7d", () =>
    Effect.gen(function* () {
      for (const every of ["soon", "10ms", "30d"]) {
        const error = yield* Effect.flip(decode({ reconcile: { every } }))
        expect(String(error)).toMatch(/expected a duration/)
      }
      const ok = yield* decode({ reconcile: { every: "6h" } })
      expect(ok.reconcile).toEqual({ every: "6h" })
      expect(String(yield* Effect.flip(decode({ reconcile: { often: "1h" } })))).toBeTruthy()
    })
  )
})
