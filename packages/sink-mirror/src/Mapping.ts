/**
 * Which rows an event changes, and how two versions of a row combine. Pure.
 *
 * Combining is what makes the mirror order-safe: `merge` is associative and
 * commutative, so any order of delivery, with any repeats, ends in the same row as
 * applying each event once in order.
 *
 * - The version of the newest event wins: the greatest `(at, eventId)` (an event's
 *   creation time, then its id: WorkOS's ids are time-ordered ULIDs). An event older
 *   than the row's last change changes nothing; the same event again changes nothing.
 * - A delete is final (`deleted_at` is the earliest delete seen), so a late update
 *   never brings a deleted object back. Only a group membership, whose key is the
 *   pair of ids, comes back when a newer event adds it again.
 */
import type { Event } from "@workos-relay/core"
import { groupMembershipId, isoTime, type TableName, tables } from "./Tables.ts"

/** One version of one row, as an event (or a reconcile) says it is. */
export interface Row {
  readonly table: TableName
  readonly id: string
  /** The object as WorkOS sent it (`previous_attributes` left out). */
  readonly object: Record<string, unknown>
  /** When the change happened (ISO-8601, canonical): the event's `created_at`. */
  readonly at: string
  /** The event's id (`reconcile` for a repair). */
  readonly eventId: string
  /** When the object was deleted (ISO-8601), or null. */
  readonly deletedAt: string | null
  /**
   * As stored: the id of the parent whose delete tombstoned this row (a cascade, see
   * `Tables.cascades`); null (or absent) when the row's own delete did, or it is live.
   * Never set by an event's version.
   */
  readonly deletedWith?: string | null
}

/** Which table an event type writes, and whether it deletes; types not listed are ignored. */
export interface Rule {
  readonly table: TableName
  readonly deletes: boolean
  /** Where the object is in `data` (`organization_domain` for a verification failure); `data` itself when absent. */
  readonly field?: string
}

export const rules: Readonly<Record<string, Rule>> = {
  "organization.created": { table: "organizations", deletes: false },
  "organization.updated": { table: "organizations", deletes: false },
  "organization.deleted": { table: "organizations", deletes: true },
  "organization_domain.created": { table: "organization_domains", deletes: false },
  "organization_domain.updated": { table: "organization_domains", deletes: false },
  "organization_domain.verified": { table: "organization_domains", deletes: false },
  "organization_domain.verification_failed": {
    table: "organization_domains",
    deletes: false,
    field: "organization_domain"
  },
  "organization_domain.deleted": { table: "organization_domains", deletes: true },
  "user.created": { table: "users", deletes: false },
  "user.updated": { table: "users", deletes: false },
  "user.deleted": { table: "users", deletes: true },
  "organization_membership.created": { table: "organization_memberships", deletes: false },
  "organization_membership.updated": { table: "organization_memberships", deletes: false },
  "organization_membership.deleted": { table: "organization_memberships", deletes: true },
  "dsync.activated": { table: "directories", deletes: false },
  "dsync.deleted": { table: "directories", deletes: true },
  "dsync.user.created": { table: "directory_users", deletes: false },
  "dsync.user.updated": { table: "directory_users", deletes: false },
  "dsync.user.deleted": { table: "directory_users", deletes: true },
  "dsync.group.created": { table: "directory_groups", deletes: false },
  "dsync.group.updated": { table: "directory_groups", deletes: false },
  "dsync.group.deleted": { table: "directory_groups", deletes: true },
  "dsync.group.user_added": { table: "directory_group_memberships", deletes: false },
  "dsync.group.user_removed": { table: "directory_group_memberships", deletes: true },
  "connection.activated": { table: "connections", deletes: false },
  "connection.deactivated": { table: "connections", deletes: false },
  "connection.deleted": { table: "connections", deletes: true }
}

/** The event types the mirror applies (every other type is ignored, never rejected). */
export const eventTypes: ReadonlyArray<string> = Object.keys(rules)

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The object without what belongs to the event rather than the object (`previous_attributes`). */
const objectOf = (data: Record<string, unknown>): Record<string, unknown> => {
  if (!("previous_attributes" in data)) return data
  const { previous_attributes: _, ...rest } = data
  return rest
}

/** Why an event the mirror uses cannot be applied; undefined when it can. */
export const problem = (event: Event.Any): string | undefined => {
  const rule = rules[event.event]
  if (rule === undefined) return undefined
  if (isoTime((event as { created_at?: unknown }).created_at) === null)
    return "created_at is not a time"
  const data = (event as { data?: unknown }).data
  if (!isRecord(data)) return "data is not an object"
  if (rule.table === "directory_group_memberships") {
    const user = (data as any).user
    const group = (data as any).group
    if (typeof user?.id !== "string" || typeof group?.id !== "string")
      return "data.user.id or data.group.id is missing"
    return undefined
  }
  const object = rule.field === undefined ? data : data[rule.field]
  if (!isRecord(object) || typeof object.id !== "string")
    return `${rule.field === undefined ? "data" : `data.${rule.field}`}.id is missing`
  return undefined
}

/**
 * The rows an event changes: none for a type the mirror does not use (or one it
 * cannot apply: see `problem`). An organization's event also carries its domains.
 */
export const rowsOf = (event: Event.Any): ReadonlyArray<Row> => {
  const rule = rules[event.event]
  if (rule === undefined || problem(event) !== undefined) return []
  const at = isoTime((event as { created_at: string }).created_at)!
  const data = (event as { data: Record<string, any> }).data
  const deletedAt = rule.deletes ? at : null
  const version = (table: TableName, id: string, object: Record<string, unknown>): Row => ({
    table,
    id,
    object,
    at,
    eventId: event.id,
    deletedAt
  })
  if (rule.table === "directory_group_memberships") {
    const object = {
      object: tables.directory_group_memberships.object,
      directory_id: data.directory_id ?? data.group.directory_id ?? null,
      group_id: data.group.id,
      user_id: data.user.id
    }
    return [version(rule.table, groupMembershipId(data.group.id, data.user.id), object)]
  }
  const object = objectOf(rule.field === undefined ? data : data[rule.field])
  const rows = [version(rule.table, object.id as string, object)]
  // The domains inside an organization are organization_domain objects as of this event.
  if (rule.table === "organizations" && Array.isArray(object.domains)) {
    for (const domain of object.domains) {
      if (isRecord(domain) && typeof domain.id === "string")
        rows.push(version("organization_domains", domain.id, domain))
    }
  }
  return rows
}

/** Is version `a` of a row newer than `b`? (creation time, then event id) */
export const newer = (a: Row, b: Row): boolean =>
  a.at > b.at || (a.at === b.at && a.eventId > b.eventId)

const earliest = (a: string | null, b: string | null): string | null =>
  a === null ? b : b === null ? a : a < b ? a : b

/** Two versions of one row combined (see the module's description). */
export const merge = (a: Row, b: Row): Row => {
  const winner = newer(b, a) ? b : a
  if (tables[a.table].revivable) return winner
  const deletedAt = earliest(a.deletedAt, b.deletedAt)
  return deletedAt === winner.deletedAt ? winner : { ...winner, deletedAt }
}

/** The rows of a batch of events, one per table and id, each the merge of its versions. */
export const fold = (events: ReadonlyArray<Event.Any>): ReadonlyArray<Row> => {
  const byKey = new Map<string, Row>()
  for (const event of events) {
    for (const row of rowsOf(event)) {
      const key = `${row.table}\u0000${row.id}`
      const before = byKey.get(key)
      byKey.set(key, before === undefined ? row : merge(before, row))
    }
  }
  return [...byKey.values()]
}
