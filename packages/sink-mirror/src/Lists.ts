/**
 * What WorkOS lists for each table a reconcile compares, read through the core's
 * list calls: organizations (and their domains), users, directories and connections
 * at once; organization memberships per organization; directory users and groups per
 * directory (the APIs need those filters); group memberships as the users of each
 * group (`/directory_users?group=`: a user's own `groups` is deprecated and empty for
 * teams created from May 2026).
 */

import type { WorkOS, WorkOSList } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { domainsOf, groupMembership, type Reconcilable } from "./Reconcile.ts"

type Objects = ReadonlyArray<Record<string, unknown>>

const collect = (stream: Stream.Stream<WorkOSList.Listed, WorkOS.WorkOSError>) =>
  Stream.runCollect(stream) as Effect.Effect<Objects, WorkOS.WorkOSError>

/** The listed objects of `tables` (every reconcilable table when absent). */
export const read = (
  lists: WorkOSList.Lists,
  tables: ReadonlyArray<Reconcilable>
): Effect.Effect<Partial<Record<Reconcilable, Objects>>, WorkOS.WorkOSError> =>
  Effect.gen(function* () {
    const want = (t: Reconcilable) => tables.includes(t)
    const out: Partial<Record<Reconcilable, Objects>> = {}
    const needOrgs =
      want("organizations") || want("organization_domains") || want("organization_memberships")
    const organizations = needOrgs ? yield* collect(lists.all("organizations")) : []
    if (want("organizations")) out.organizations = organizations
    if (want("organization_domains")) out.organization_domains = domainsOf(organizations)
    if (want("organization_memberships")) {
      const memberships: Array<Record<string, unknown>> = []
      for (const o of organizations)
        memberships.push(
          ...(yield* collect(
            lists.all("organization_memberships", { organization_id: String(o.id) })
          ))
        )
      out.organization_memberships = memberships
    }
    if (want("users")) out.users = yield* collect(lists.all("users"))
    if (want("connections")) out.connections = yield* collect(lists.all("connections"))
    const needDirectories =
      want("directories") ||
      want("directory_users") ||
      want("directory_groups") ||
      want("directory_group_memberships")
    const directories = needDirectories ? yield* collect(lists.all("directories")) : []
    if (want("directories")) out.directories = directories
    const groups: Array<Record<string, unknown>> = []
    for (const [table, resource] of [
      ["directory_users", "directory_users"],
      ["directory_groups", "directory_groups"]
    ] as const) {
      const needed =
        want(table) || (table === "directory_groups" && want("directory_group_memberships"))
      if (!needed) continue
      const all: Array<Record<string, unknown>> = []
      for (const d of directories)
        all.push(...(yield* collect(lists.all(resource, { directory: String(d.id) }))))
      if (want(table)) out[table] = all
      if (table === "directory_groups") groups.push(...all)
    }
    if (want("directory_group_memberships")) {
      const memberships: Array<Record<string, unknown>> = []
      for (const g of groups)
        for (const user of yield* collect(lists.all("directory_users", { group: String(g.id) })))
          memberships.push(groupMembership(g, String(user.id)))
      out.directory_group_memberships = memberships
    }
    return out
  })
