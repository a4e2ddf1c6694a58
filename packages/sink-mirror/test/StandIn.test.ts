/**
 * Reconcile against the WorkOS stand-in: it keeps its objects in step with the events
 * it serves and lists them; drift is injected there (events lost, an object changed
 * without an event), and `mirror reconcile` finds and repairs each kind.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { type Event, WorkOS, WorkOSList } from "@workos-relay/core"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Effect from "effect/Effect"
import { FetchHttpClient } from "effect/http"
import * as Redacted from "effect/Redacted"
import { runReconcile } from "../src/Cli.ts"
import * as Reconcile from "../src/Reconcile.ts"
import { deliverTo, openStore } from "../src/Sink.ts"
import { history } from "./workload.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirror-standin-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const input = (e: Event.Any) => ({ event: e.event, data: (e as { data: unknown }).data })

describe("reconcile against the WorkOS stand-in", () => {
  it.live("repairs events lost and an object changed without an event", () =>
    Effect.gen(function* () {
      const standIn = yield* Effect.acquireRelease(
        Effect.promise(() => WorkOSStandIn.start({ events: 0 })),
        (s) => Effect.promise(() => s.close())
      )
      const h = history(1500, 31)
      standIn.append(h.slice(0, 1000).map(input))
      standIn.appendUnseen(h.slice(1000, 1200).map(input))
      standIn.append(h.slice(1200).map(input))
      const [quiet] = standIn.state.objects("users")
      expect(standIn.state.changeQuietly("users", quiet!.id, { first_name: "Quietly" })).toBe(true)

      const config = { path: path.join(dir, "standin.db"), prefix: "workos_" }
      const served = standIn.events() as unknown as ReadonlyArray<Event.Any>
      expect(served).toHaveLength(1300)
      yield* Effect.scoped(Effect.flatMap(openStore(config), (s) => deliverTo(s)(served)))

      const lists = yield* WorkOSList.make({
        ...WorkOS.defaults,
        apiKey: Redacted.make(standIn.apiKey),
        baseUrl: standIn.url
      }).pipe(Effect.provide(FetchHttpClient.layer))
      const { report } = yield* runReconcile(config, lists, Reconcile.reconcilable)
      expect(report.users!.changed).toContain(quiet!.id)
      const drift = Object.values(report).reduce(
        (n, f) => n + f.missing.length + f.changed.length + f.gone.length,
        0
      )
      expect(drift).toBeGreaterThan(10)

      const store = yield* openStore(config)
      const expectTable = (
        table: Reconcile.Reconcilable,
        objects: ReadonlyArray<Record<string, unknown>>
      ) =>
        Effect.gen(function* () {
          const live = (yield* store.rows(table)).filter((r) => r.deletedAt === null)
          expect(
            Object.fromEntries(live.map((r) => [r.id, Reconcile.canonical(r.object)])),
            table
          ).toEqual(
            Object.fromEntries(
              objects.map((o) => [Reconcile.keyOf(table, o) as string, Reconcile.canonical(o)])
            )
          )
        })
      const organizations = standIn.state.objects("organizations")
      yield* expectTable("organizations", organizations)
      yield* expectTable("organization_domains", Reconcile.domainsOf(organizations))
      for (const t of [
        "users",
        "organization_memberships",
        "directories",
        "directory_users",
        "directory_groups",
        "connections"
      ] as const)
        yield* expectTable(t, standIn.state.objects(t))
      // Group memberships: the users each live group lists (`/directory_users?group=`).
      // (a user added to a group after it was deleted is not listed: only live users are).
      const liveUsers = new Set(standIn.state.objects("directory_users").map((u) => u.id))
      const memberships = standIn.state.objects("directory_groups").flatMap((g) =>
        standIn.state
          .groupMembers(g.id)
          .filter((u) => liveUsers.has(u))
          .map((u) => Reconcile.groupMembership(g, u))
      )
      expect(memberships.length).toBeGreaterThan(0)
      yield* expectTable("directory_group_memberships", memberships)
      const m = report.directory_group_memberships!
      expect(m.missing.length + m.gone.length).toBeGreaterThan(0)
      expect((yield* store.rows("users")).find((u) => u.id === quiet!.id)!.object.first_name).toBe(
        "Quietly"
      )
    }).pipe(Effect.scoped)
  )
})
