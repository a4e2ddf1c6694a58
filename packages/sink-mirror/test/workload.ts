/**
 * A made-up but realistic history of WorkOS events for tests and the benchmark:
 * organizations with domains, users and their memberships, directories with users,
 * groups and group memberships, connections; each object created, updated several
 * times, some deleted; users added to groups, removed, added again. Deterministic
 * for a seed. Also: a sequential reference of what the tables should hold, written
 * apart from `Mapping.merge`, and delivery orders a real source produces.
 */
import type { Event } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import * as Mapping from "../src/Mapping.ts"
import { cascades, type TableName, tables } from "../src/Tables.ts"

/** A small, fast, seedable generator (mulberry32). */
export const random = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const example = (type: keyof typeof examples): Record<string, any> =>
  structuredClone((examples[type] as any).data)

/** `count` events in creation order, starting at `start` (ms). */
export const history = (count: number, seed = 1, start = Date.parse("2026-03-01T00:00:00Z")) => {
  const next = random(seed)
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(next() * xs.length)]!
  const events: Array<Event.Any> = []
  let clock = start
  const emit = (type: string, data: Record<string, unknown>) => {
    // Several events may share a millisecond; ids (time-ordered, as WorkOS's) break ties.
    if (next() < 0.7) clock += 1 + Math.floor(next() * 5)
    const n = events.length
    const at = new Date(clock).toISOString()
    events.push({
      object: "event",
      id: `event_${seed.toString(36).padStart(4, "0")}${String(n).padStart(10, "0")}`,
      event: type,
      // A copy: the objects change on, the event keeps them as they were.
      data: structuredClone(data.updated_at === undefined ? data : { ...data, updated_at: at }),
      created_at: at
    } as unknown as Event.Any)
  }
  let serial = 0
  const newId = (prefix: string) => `${prefix}_${seed}x${(serial++).toString(36).padStart(6, "0")}`

  const orgs: Array<Record<string, any>> = []
  const users: Array<Record<string, any>> = []
  const memberships: Array<Record<string, any>> = []
  const directories: Array<Record<string, any>> = []
  const dirUsers: Array<Record<string, any>> = []
  const groups: Array<Record<string, any>> = []
  const connections: Array<Record<string, any>> = []
  const inGroup = new Set<string>()
  const pairs: Array<readonly [Record<string, any>, Record<string, any>]> = []

  const live = (xs: Array<Record<string, any>>) => xs.filter((x) => !x.__deleted)
  // A deleted directory's users and groups go with it, without events (as in WorkOS).
  const dropChildrenOfDeletedDirectories = () => {
    const gone = new Set(directories.filter((d) => d.__deleted).map((d) => d.id))
    for (const x of [...dirUsers, ...groups]) if (gone.has(x.directory_id)) x.__deleted = true
  }
  const update = (type: string, x: Record<string, any>, change: () => void) => {
    change()
    const { __deleted: _, ...data } = x
    emit(type, data)
  }
  const remove = (type: string, x: Record<string, any>) => {
    x.__deleted = true
    const { __deleted: _, ...data } = x
    emit(type, data)
  }

  while (events.length < count) {
    const r = next()
    const org = live(orgs).length > 0 ? pick(live(orgs)) : undefined
    if (org === undefined || r < 0.04) {
      const o: Record<string, any> = {
        ...example("organization.created"),
        id: newId("org"),
        name: `Org ${serial}`
      }
      o.domains = [
        {
          ...o.domains[0],
          id: newId("org_domain"),
          organization_id: o.id,
          domain: `d${serial}.com`
        }
      ]
      orgs.push(o)
      update("organization.created", o, () => {})
    } else if (r < 0.08) update("organization.updated", org, () => (org.name = `Org ${serial++}`))
    else if (r < 0.09) {
      remove("organization.deleted", org)
      // Its memberships, directories and connections go with it, without events (as in WorkOS).
      for (const x of [...memberships, ...directories, ...connections])
        if (x.organization_id === org.id) x.__deleted = true
      dropChildrenOfDeletedDirectories()
    } else if (r < 0.12) {
      const d = org.domains[0]
      update("organization_domain.verified", d, () => (d.state = "verified"))
    } else if (r < 0.2) {
      const u = { ...example("user.created"), id: newId("user"), email: `u${serial}@x.com` }
      users.push(u)
      update("user.created", u, () => {})
    } else if (r < 0.3 && live(users).length > 0) {
      const u = pick(live(users))
      update("user.updated", u, () => (u.first_name = `F${serial++}`))
    } else if (r < 0.32 && live(users).length > 0) remove("user.deleted", pick(live(users)))
    else if (r < 0.38 && live(users).length > 0) {
      const m = {
        ...example("organization_membership.created"),
        id: newId("om"),
        user_id: pick(live(users)).id,
        organization_id: org.id
      }
      memberships.push(m)
      update("organization_membership.created", m, () => {})
    } else if (r < 0.42 && live(memberships).length > 0) {
      const m = pick(live(memberships))
      update(
        "organization_membership.updated",
        m,
        () => (m.role = { slug: pick(["admin", "member"]) })
      )
    } else if (r < 0.43 && live(memberships).length > 0)
      remove("organization_membership.deleted", pick(live(memberships)))
    else if (r < 0.45 || live(directories).length === 0) {
      const d = { ...example("dsync.activated"), id: newId("directory"), organization_id: org.id }
      directories.push(d)
      update("dsync.activated", d, () => {})
    } else if (r < 0.46) {
      remove("dsync.deleted", pick(live(directories)))
      dropChildrenOfDeletedDirectories()
    } else if (r < 0.58) {
      const dir = pick(live(directories))
      const u = {
        ...example("dsync.user.created"),
        id: newId("directory_user"),
        directory_id: dir.id,
        organization_id: dir.organization_id,
        email: `du${serial}@x.com`
      }
      dirUsers.push(u)
      update("dsync.user.created", u, () => {})
    } else if (r < 0.72 && live(dirUsers).length > 0) {
      const u = pick(live(dirUsers))
      update("dsync.user.updated", u, () => {
        u.state = pick(["active", "suspended"])
        u.job_title = `T${serial++}`
      })
    } else if (r < 0.74 && live(dirUsers).length > 0)
      remove("dsync.user.deleted", pick(live(dirUsers)))
    else if (r < 0.79) {
      const dir = pick(live(directories))
      const g = {
        ...example("dsync.group.created"),
        id: newId("directory_group"),
        directory_id: dir.id,
        organization_id: dir.organization_id
      }
      groups.push(g)
      update("dsync.group.created", g, () => {})
    } else if (r < 0.82 && live(groups).length > 0) {
      const g = pick(live(groups))
      update("dsync.group.updated", g, () => (g.name = `G${serial++}`))
    } else if (r < 0.83 && live(groups).length > 0)
      remove("dsync.group.deleted", pick(live(groups)))
    else if (r < 0.93 && live(groups).length > 0 && live(dirUsers).length > 0) {
      // Often a pair seen before: removed, or added again.
      const [g, u] =
        pairs.length > 0 && next() < 0.5
          ? pick(pairs)
          : ([pick(live(groups)), pick(live(dirUsers))] as const)
      const key = `${g.id}:${u.id}`
      if (!inGroup.has(key)) pairs.push([g, u])
      const { __deleted: _g, ...group } = g
      const { __deleted: _u, ...user } = u
      if (inGroup.has(key)) inGroup.delete(key)
      else inGroup.add(key)
      emit(inGroup.has(key) ? "dsync.group.user_added" : "dsync.group.user_removed", {
        directory_id: g.directory_id,
        user,
        group
      })
    } else if (r < 0.97) {
      const c = { ...example("connection.activated"), id: newId("conn"), organization_id: org.id }
      connections.push(c)
      update("connection.activated", c, () => {})
    } else if (live(connections).length > 0) {
      const c = pick(live(connections))
      if (next() < 0.2) remove("connection.deleted", c)
      else
        update(next() < 0.5 ? "connection.deactivated" : "connection.activated", c, () => {
          c.state = c.state === "active" ? "inactive" : "active"
        })
    } else emit("authentication.sso_succeeded", example("authentication.sso_succeeded"))
  }
  return events
}

/**
 * What the tables hold after each event applied once, in order: written plainly,
 * apart from `Mapping.merge` (the last event's object; a delete final, except for a
 * group membership, which the last add or remove decides). Then the cascades: a row
 * not deleted itself whose parent's own delete is at or after its last change is
 * tombstoned as of the earliest such delete (`Tables.cascades`; ties to the smallest
 * parent id).
 */
export const reference = (events: ReadonlyArray<Event.Any>): Map<TableName, Array<Mapping.Row>> => {
  const byKey = new Map<string, Mapping.Row>()
  for (const event of events) {
    for (const row of Mapping.rowsOf(event)) {
      const key = `${row.table}\u0000${row.id}`
      const before = byKey.get(key)
      const deletedAt =
        before === undefined || tables[row.table].revivable
          ? row.deletedAt
          : (before.deletedAt ?? row.deletedAt)
      byKey.set(key, { ...row, deletedAt, deletedWith: null })
    }
  }
  // Own deletes only: a parent tombstoned by a cascade does not cascade further.
  const ownDelete = (table: TableName, id: unknown) =>
    typeof id === "string" ? (byKey.get(`${table}\u0000${id}`)?.deletedAt ?? null) : null
  const cascaded = new Map<string, Mapping.Row>()
  for (const [key, row] of byKey) {
    if (row.deletedAt !== null) continue
    let found: { at: string; parent: string } | undefined
    for (const cascade of cascades) {
      if (cascade.child !== row.table) continue
      const parent = row.object[cascade.column]
      const at = ownDelete(cascade.parent, parent)
      if (
        at !== null &&
        row.at <= at &&
        (found === undefined || at < found.at || (at === found.at && String(parent) < found.parent))
      )
        found = { at, parent: parent as string }
    }
    if (found !== undefined)
      cascaded.set(key, { ...row, deletedAt: found.at, deletedWith: found.parent })
  }
  for (const [key, row] of cascaded) byKey.set(key, row)
  const out = new Map<TableName, Array<Mapping.Row>>()
  for (const row of byKey.values()) {
    const list = out.get(row.table) ?? []
    list.push(row)
    out.set(row.table, list)
  }
  for (const list of out.values()) list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  return out
}

/**
 * The events as a real source may hand them over, in batches: shuffled within a
 * window (late commits, out-of-order updates), some events repeated, some whole
 * batches delivered again (a crash before the checkpoint moved).
 */
export const deliveries = (
  events: ReadonlyArray<Event.Any>,
  seed: number,
  options: { readonly window?: number; readonly batch?: number } = {}
): Array<Array<Event.Any>> => {
  const next = random(seed)
  const window = options.window ?? 20
  const shuffled = [...events]
  for (let i = 0; i < shuffled.length; i++) {
    const j = Math.min(shuffled.length - 1, i + Math.floor(next() * window))
    ;[shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!]
  }
  const withRepeats: Array<Event.Any> = []
  for (const e of shuffled) {
    withRepeats.push(e)
    if (next() < 0.1) withRepeats.push(e)
  }
  const batches: Array<Array<Event.Any>> = []
  const size = options.batch ?? 50
  for (let i = 0; i < withRepeats.length; ) {
    const n = 1 + Math.floor(next() * size)
    const batch = withRepeats.slice(i, i + n)
    batches.push(batch)
    if (next() < 0.15) batches.push(batch)
    i += n
  }
  return batches
}
