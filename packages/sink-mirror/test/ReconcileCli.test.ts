/**
 * `mirror reconcile` and `mirror bootstrap` end to end: the core's list calls over
 * HTTP against a local server that lists WorkOS's state after a history of events,
 * paged and filtered as the spec says.
 */
import * as fs from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { RequestBudget, WorkOS, WorkOSList } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import { FetchHttpClient } from "effect/http"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { reportText, runReconcile, statusText, workosLists } from "../src/Cli.ts"
import * as Reconcile from "../src/Reconcile.ts"
import { deliverTo, openStore } from "../src/Sink.ts"
import { history, random, reference } from "./workload.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirror-reconcile-cli-"))
const events = history(2000, 23)
const ref = reference(events)
const alive = (table: string) =>
  (ref.get(table as never) ?? []).filter((r) => r.deletedAt === null).map((r) => r.object)
// What WorkOS lists: an object whose directory or organization is gone goes with it
// (WorkOS sends no event for each of them).
const liveDirectories = new Set(alive("directories").map((d) => d.id))
const liveOrganizations = new Set(alive("organizations").map((o) => o.id))
// An organization lists its domains as they are now.
const withDomains = (o: Record<string, unknown>): Record<string, unknown> => ({
  ...o,
  domains: alive("organization_domains").filter((d) => d.organization_id === o.id)
})
const liveIds = (table: string) =>
  new Set(
    alive(table)
      .filter((o) => liveDirectories.has(o.directory_id))
      .map((o) => o.id)
  )
const liveGroups = liveIds("directory_groups")
const liveUsers = liveIds("directory_users")
const live = (table: string) =>
  (table === "organizations" ? alive(table).map(withDomains) : alive(table)).filter((o) =>
    table === "directory_users" || table === "directory_groups"
      ? liveDirectories.has(o.directory_id)
      : table === "directory_group_memberships"
        ? liveGroups.has(o.group_id) && liveUsers.has(o.user_id)
        : table === "organization_memberships" || table === "organization_domains"
          ? liveOrganizations.has(o.organization_id)
          : true
  )
const byPath: Record<string, { objects: ReadonlyArray<Record<string, unknown>>; filter?: string }> =
  {
    "/organizations": { objects: live("organizations") },
    "/user_management/users": { objects: live("users") },
    "/user_management/organization_memberships": {
      objects: live("organization_memberships"),
      filter: "organization_id"
    },
    "/directories": { objects: live("directories") },
    "/directory_users": { objects: live("directory_users"), filter: "directory" },
    "/directory_groups": { objects: live("directory_groups"), filter: "directory" },
    "/connections": { objects: live("connections") }
  }
let requests = 0
let server: Server
let baseUrl = ""
beforeAll(async () => {
  server = createServer((req, res) => {
    requests++
    const url = new URL(req.url!, "http://x")
    const list = byPath[url.pathname]
    if (list === undefined) return void res.writeHead(404).end('{"message":"Not Found"}')
    const field = list.filter === "directory" ? "directory_id" : list.filter
    const wanted = list.filter === undefined ? undefined : url.searchParams.get(list.filter)
    // `/directory_users?group=`: the users of a group.
    const group = url.searchParams.get("group")
    const members = new Set(
      live("directory_group_memberships")
        .filter((m) => m.group_id === group)
        .map((m) => m.user_id)
    )
    const objects =
      url.pathname === "/directory_users" && group !== null
        ? list.objects.filter((o) => members.has(o.id))
        : list.objects.filter((o) => field === undefined || o[field] === wanted)
    const after = url.searchParams.get("after")
    const start = after === null ? 0 : objects.findIndex((o) => o.id === after) + 1
    const limit = Number(url.searchParams.get("limit"))
    const data = objects.slice(start, start + limit)
    const more = start + limit < objects.length
    res.writeHead(200, { "content-type": "application/json" }).end(
      JSON.stringify({
        data,
        list_metadata: { before: null, after: more ? data.at(-1)!.id : null }
      })
    )
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true })
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

const lists = () =>
  WorkOSList.make({ ...WorkOS.defaults, apiKey: Redacted.make("sk_test"), baseUrl }).pipe(
    Effect.provide(FetchHttpClient.layer)
  )

const liveIn = (file: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* openStore({ path: file, prefix: "workos_" })
      const out: Record<string, Record<string, string>> = {}
      for (const t of Reconcile.reconcilable)
        out[t] = Object.fromEntries(
          (yield* store.rows(t))
            .filter((r) => r.deletedAt === null)
            .map((r) => [r.id, Reconcile.canonical(r.object)])
        )
      return out
    })
  )

const truth = Object.fromEntries(
  Reconcile.reconcilable.map((t) => [
    t,
    Object.fromEntries(
      live(t).map((o) => [Reconcile.keyOf(t, o) as string, Reconcile.canonical(o)])
    )
  ])
)

describe("mirror reconcile / bootstrap", () => {
  it.live("reconcile repairs the events a mirror missed, read page by page from the lists", () =>
    Effect.gen(function* () {
      const file = path.join(dir, "drifted.db")
      const config = { path: file, prefix: "workos_" }
      const next = random(2)
      yield* Effect.scoped(
        Effect.flatMap(openStore(config), (s) => deliverTo(s)(events.filter(() => next() > 0.15)))
      )
      expect(yield* liveIn(file)).not.toEqual(truth)
      const before = requests
      const { report } = yield* runReconcile(config, yield* lists(), Reconcile.reconcilable)
      expect(requests - before).toBeGreaterThan(7)
      expect(yield* liveIn(file)).toEqual(truth)
      expect(reportText(report)).toMatch(/^table\s+missing\s+changed\s+gone/)
      const only = yield* runReconcile(config, yield* lists(), ["users"])
      expect(Object.keys(only.report)).toEqual(["users"])
      expect(only.report.users!.changed).toEqual([])
      expect(yield* statusText(config)).toContain("last reconcile: ")
    })
  )

  it.live("bootstrap fills empty tables and refuses tables that hold rows", () =>
    Effect.gen(function* () {
      const file = path.join(dir, "empty.db")
      const config = { path: file, prefix: "workos_" }
      const { listedAt } = yield* runReconcile(config, yield* lists(), Reconcile.reconcilable, {
        requireEmpty: true
      })
      expect(yield* liveIn(file)).toEqual(truth)
      // Events from before the listing are older than the rows: a listed row keeps its object.
      yield* Effect.scoped(Effect.flatMap(openStore(config), (s) => deliverTo(s)(events)))
      const after = yield* liveIn(file)
      for (const t of Reconcile.reconcilable)
        for (const [id, object] of Object.entries(truth[t]!)) expect(after[t]![id]).toBe(object)
      // (Old events also bring back objects WorkOS removed with their directory: the next reconcile tombstones them.)
      yield* runReconcile(config, yield* lists(), Reconcile.reconcilable)
      expect(yield* liveIn(file)).toEqual(truth)
      expect(listedAt.getTime()).toBeGreaterThan(0)
      const refused = yield* Effect.flip(
        runReconcile(config, yield* lists(), Reconcile.reconcilable, { requireEmpty: true })
      )
      expect(refused.message).toContain("bootstrap fills empty tables only")
    })
  )

  it.live(
    "reconcile's list calls go through the key's request budget (source.maxRequestsPerMinute)",
    () =>
      Effect.gen(function* () {
        const file = path.join(dir, "relay.yaml")
        const apiKey = "sk_budget_test"
        fs.writeFileSync(
          file,
          `source:\n  type: workos\n  apiKey: ${apiKey}\n  baseUrl: ${baseUrl}\n  maxRequestsPerMinute: 1234\nsinks:\n  m:\n    type: mirror\n    path: ./budget.db\n`
        )
        const none = Option.none<string>()
        const flags = {
          sqlite: none,
          postgres: none,
          schema: none,
          prefix: none,
          sink: none,
          baseUrl: none
        }
        const listed = yield* workosLists({ ...flags, config: Option.some(file) })
        const before = requests
        yield* runReconcile(
          { path: path.join(dir, "budget.db"), prefix: "workos_" },
          listed,
          Reconcile.reconcilable
        )
        // The one budget of this key in the process (a relay's client takes its slots there too).
        const stats = RequestBudget.forKey(apiKey, baseUrl).stats()
        expect(stats.maxPerMinute).toBe(1234)
        expect(requests - before).toBeGreaterThan(7)
        expect(stats.requests).toBe(requests - before)
      })
  )
})
