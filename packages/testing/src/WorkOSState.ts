/**
 * The WorkOS stand-in's state: the objects its events describe (organizations with
 * their domains, users, organization memberships, directories, directory users and
 * groups, connections), kept in step with every event it holds, and served by the
 * list APIs as WorkOS serves them (`GET /organizations`, `/user_management/users`,
 * `/user_management/organization_memberships`, `/directories`, `/directory_users`,
 * `/directory_groups`, `/connections`: `limit`, `after`, the filters each takes,
 * `{ data, list_metadata }`).
 *
 * Drift on demand, as happens with a real WorkOS: an event applied to the state but
 * never served (`StandIn.appendUnseen`: lost to an outage), or an object changed
 * without any event (`changeQuietly`).
 */
type Obj = Record<string, unknown> & { readonly id: string }

/** Each list: its path, and the query filters it takes with the field each compares. */
export const lists = {
  organizations: { path: "/organizations", filters: {} },
  users: { path: "/user_management/users", filters: { organization_id: "organization_id" } },
  organization_memberships: {
    path: "/user_management/organization_memberships",
    filters: { organization_id: "organization_id", user_id: "user_id" }
  },
  directories: { path: "/directories", filters: { organization_id: "organization_id" } },
  directory_users: { path: "/directory_users", filters: { directory: "directory_id" } },
  directory_groups: { path: "/directory_groups", filters: { directory: "directory_id" } },
  connections: { path: "/connections", filters: { organization_id: "organization_id" } }
} as const
export type ListName = keyof typeof lists

const upserts: Record<string, ListName> = {
  "organization.created": "organizations",
  "organization.updated": "organizations",
  "user.created": "users",
  "user.updated": "users",
  "organization_membership.created": "organization_memberships",
  "organization_membership.updated": "organization_memberships",
  "dsync.activated": "directories",
  "dsync.user.created": "directory_users",
  "dsync.user.updated": "directory_users",
  "dsync.group.created": "directory_groups",
  "dsync.group.updated": "directory_groups",
  "connection.activated": "connections",
  "connection.deactivated": "connections"
}
const deletes: Record<string, ListName> = {
  "organization.deleted": "organizations",
  "user.deleted": "users",
  "organization_membership.deleted": "organization_memberships",
  "dsync.deleted": "directories",
  "dsync.user.deleted": "directory_users",
  "dsync.group.deleted": "directory_groups",
  "connection.deleted": "connections"
}

export interface State {
  /** Applies an event to the objects (in the order events are created). */
  readonly observe: (event: Record<string, unknown>) => void
  /** The objects of a list now, in creation order. */
  readonly objects: (list: ListName) => ReadonlyArray<Obj>
  /** Changes an object without an event (drift). False when there is no such object. */
  readonly changeQuietly: (list: ListName, id: string, patch: Record<string, unknown>) => boolean
  /** The ids of the users in a directory group now. */
  readonly groupMembers: (groupId: string) => ReadonlyArray<string>
  /** The answer to a list request, or undefined when the path is not a list. */
  readonly answer: (url: URL) => { readonly status: number; readonly body: unknown } | undefined
}

const isObj = (value: unknown): value is Obj =>
  typeof value === "object" && value !== null && typeof (value as Obj).id === "string"

export const make = (): State => {
  const state = new Map<ListName, Map<string, Obj>>(
    (Object.keys(lists) as Array<ListName>).map((l) => [l, new Map()])
  )
  const domains = new Map<string, Obj>()
  // Directory group memberships: group id -> user ids (`/directory_users?group=`).
  const members = new Map<string, Set<string>>()
  const forget = (drop: (group: string, user: string) => boolean) => {
    for (const [group, users] of members)
      for (const user of users) if (drop(group, user)) users.delete(user)
  }

  const withoutEventFields = (data: Obj): Obj => {
    const { previous_attributes: _, ...object } = data
    return object as Obj
  }

  const observe = (event: Record<string, unknown>) => {
    const type = String(event.event)
    const data = event.data
    if (type.startsWith("organization_domain.")) {
      const domain = type.endsWith("verification_failed")
        ? (data as { organization_domain?: unknown })?.organization_domain
        : data
      if (!isObj(domain)) return
      if (type === "organization_domain.deleted") domains.delete(domain.id)
      else domains.set(domain.id, domain)
      return
    }
    if (type === "dsync.group.user_added" || type === "dsync.group.user_removed") {
      const { user, group } = (data ?? {}) as { user?: unknown; group?: unknown }
      if (!isObj(user) || !isObj(group)) return
      if (!members.has(group.id)) members.set(group.id, new Set())
      if (type === "dsync.group.user_added") members.get(group.id)!.add(user.id)
      else members.get(group.id)!.delete(user.id)
      return
    }
    if (!isObj(data)) return
    const upsert = upserts[type]
    if (upsert !== undefined) {
      const object = withoutEventFields(data)
      state.get(upsert)!.set(object.id, object)
      if (upsert === "organizations" && Array.isArray(object.domains))
        for (const d of object.domains) if (isObj(d)) domains.set(d.id, d)
      return
    }
    const removed = deletes[type]
    if (removed === undefined) return
    state.get(removed)!.delete(data.id)
    // A user or group gone takes its memberships with it.
    if (removed === "directory_users") forget((_, user) => user === data.id)
    if (removed === "directory_groups") members.delete(data.id)
    // What goes with its parent, without an event of its own (as WorkOS does).
    if (removed === "directories")
      for (const child of ["directory_users", "directory_groups"] as const)
        for (const [id, o] of state.get(child)!)
          if (o.directory_id === data.id) {
            state.get(child)!.delete(id)
            if (child === "directory_groups") members.delete(id)
            else forget((_, user) => user === id)
          }
    if (removed === "organizations") {
      for (const [id, d] of domains) if (d.organization_id === data.id) domains.delete(id)
      for (const [id, m] of state.get("organization_memberships")!)
        if (m.organization_id === data.id) state.get("organization_memberships")!.delete(id)
    }
  }

  const objects = (list: ListName): ReadonlyArray<Obj> => {
    const all = [...state.get(list)!.values()]
    // An organization lists its domains as they are now.
    return list === "organizations"
      ? all.map((o) => ({
          ...o,
          domains: [...domains.values()].filter((d) => d.organization_id === o.id)
        }))
      : all
  }

  const changeQuietly = (list: ListName, id: string, patch: Record<string, unknown>) => {
    const object = state.get(list)!.get(id)
    if (object === undefined) return false
    state.get(list)!.set(id, { ...object, ...patch, id })
    return true
  }

  const answer = (url: URL) => {
    const entry = (Object.entries(lists) as Array<[ListName, (typeof lists)[ListName]]>).find(
      ([, l]) => l.path === url.pathname
    )
    if (entry === undefined) return undefined
    const [name, list] = entry
    const limit = Number(url.searchParams.get("limit") ?? "10")
    if (!Number.isInteger(limit) || limit < 1 || limit > 100)
      return { status: 422, body: { message: "limit must be an integer from 1 to 100" } }
    let found = objects(name)
    for (const [param, field] of Object.entries(list.filters)) {
      const value = url.searchParams.get(param)
      if (value !== null) found = found.filter((o) => o[field] === value)
    }
    const group = url.searchParams.get("group")
    if (name === "directory_users" && group !== null) {
      const users = members.get(group) ?? new Set()
      found = found.filter((o) => users.has(o.id))
    }
    const after = url.searchParams.get("after")
    const start = after === null ? 0 : found.findIndex((o) => o.id === after) + 1
    const data = found.slice(start, start + limit)
    const more = start + limit < found.length
    return {
      status: 200,
      body: {
        object: "list",
        data,
        list_metadata: { before: data[0]?.id ?? null, after: more ? data.at(-1)!.id : null }
      }
    }
  }

  const groupMembers = (groupId: string) => [...(members.get(groupId) ?? [])]

  return { observe, objects, changeQuietly, answer, groupMembers }
}
