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
import { examples } from "@workos-relay/core/Examples"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Effect from "effect/Effect"
import { FetchHttpClient } from "effect/http"
import * as Redacted from "effect/Redacted"
import { runReconcile } from "../src/Cli.ts"
import * as Reconcile from "../src/Reconcile.ts"
import { deliverTo, openStore } from "../src/Sink.ts"
import { history, random } from "./workload.ts"

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

const example = (type: string, patch: Record<string, unknown>) => ({
  event: type,
  data: { ...structuredClone((examples as any)[type].data), ...patch }
})

describe("reconcile agrees with the cascades", () => {
  it.live(
    "parents deleted without an event per child (an organization, a directory, a group, a directory user): no drift left",
    () =>
      Effect.gen(function* () {
        const standIn = yield* Effect.acquireRelease(
          Effect.promise(() => WorkOSStandIn.start({ events: 0 })),
          (s) => Effect.promise(() => s.close())
        )
        const domain = (id: string, org: string) => ({
          ...structuredClone((examples as any)["organization.created"].data.domains[0]),
          id,
          organization_id: org
        })
        const dirUser = (id: string, dir: string) =>
          example("dsync.user.created", { id, directory_id: dir, email: `${id}@x.com` })
        const group = (id: string, dir: string) =>
          example("dsync.group.created", { id, directory_id: dir })
        const added = (g: { data: any }, u: { data: any }) =>
          example("dsync.group.user_added", {
            directory_id: g.data.directory_id,
            group: g.data,
            user: u.data
          })
        const [u1, u2, u3, u4] = ["du_1", "du_2", "du_3", "du_4"].map((id, i) =>
          dirUser(`directory_user_${id}`, i < 2 ? "directory_1" : "directory_2")
        )
        const [g1, g2, g3] = [
          group("directory_group_1", "directory_1"),
          group("directory_group_2", "directory_2"),
          group("directory_group_3", "directory_2")
        ]
        standIn.append([
          example("organization.created", {
            id: "org_1",
            domains: [domain("org_domain_1", "org_1")]
          }),
          example("organization.created", {
            id: "org_2",
            domains: [domain("org_domain_2", "org_2")]
          }),
          example("user.created", { id: "user_1" }),
          example("organization_membership.created", {
            id: "om_1",
            organization_id: "org_1",
            user_id: "user_1"
          }),
          example("organization_membership.created", {
            id: "om_2",
            organization_id: "org_2",
            user_id: "user_1"
          }),
          example("dsync.activated", { id: "directory_1", organization_id: "org_2" }),
          example("dsync.activated", { id: "directory_2", organization_id: "org_2" }),
          u1!,
          u2!,
          u3!,
          u4!,
          g1!,
          g2!,
          g3!,
          added(g1!, u1!),
          added(g1!, u2!),
          added(g2!, u3!),
          added(g2!, u4!),
          added(g3!, u3!),
          added(g3!, u4!),
          // The deletes: WorkOS sends one event each, none for what goes with them.
          example("organization.deleted", { id: "org_1", domains: [] }),
          example("dsync.deleted", { id: "directory_1", organization_id: "org_2" }),
          example("dsync.group.deleted", { id: "directory_group_2", directory_id: "directory_2" }),
          example("dsync.user.deleted", { ...u4!.data })
        ])
        const served = standIn.events() as unknown as ReadonlyArray<Event.Any>
        // Delivered shuffled, in small batches, as a source may.
        const next = random(9)
        const shuffled = [...served].sort(() => next() - 0.5)
        const config = { path: path.join(dir, "cascades.db"), prefix: "workos_" }
        const store = yield* openStore(config)
        for (let i = 0; i < shuffled.length; i += 3)
          yield* deliverTo(store)(shuffled.slice(i, i + 3))
        const cascaded = (yield* Effect.forEach(Reconcile.reconcilable, (t) => store.rows(t)))
          .flat()
          .filter((r) => r.deletedWith !== null)
          .map((r) => r.id)
          .sort()
        expect(cascaded).toEqual(
          [
            "om_1",
            "org_domain_1",
            "directory_user_du_1",
            "directory_user_du_2",
            "directory_group_1",
            "directory_group_1:directory_user_du_1",
            "directory_group_1:directory_user_du_2",
            "directory_group_2:directory_user_du_3",
            "directory_group_2:directory_user_du_4",
            "directory_group_3:directory_user_du_4"
          ].sort()
        )

        const lists = yield* WorkOSList.make({
          ...WorkOS.defaults,
          apiKey: Redacted.make(standIn.apiKey),
          baseUrl: standIn.url
        }).pipe(Effect.provide(FetchHttpClient.layer))
        const { report } = yield* runReconcile(config, lists, Reconcile.reconcilable)
        for (const [table, f] of Object.entries(report))
          expect([...f.missing, ...f.changed, ...f.gone, ...f.deletedButListed], table).toEqual([])
        // What is live is what WorkOS lists: the other organization's, the other directory's.
        expect((yield* store.counts).directory_group_memberships).toEqual({ live: 1, deleted: 5 })
      }).pipe(Effect.scoped),
    60_000
  )
})
