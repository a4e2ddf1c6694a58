/**
 * Reconciling: the tables compared with what WorkOS's list APIs return, and repaired.
 * Events lost to an outage or to retention leave drift that only such a comparison
 * finds: a row missing, a row that differs, a row for an object WorkOS no longer has.
 *
 * The lists are a snapshot taken from `listedAt` (when listing began) on. A repair is
 * a row version of that time, merged as events are (`Mapping.merge`, event id
 * `reconcile`): a row changed by an event after `listedAt` is newer than the list and
 * left alone, and an event after it still applies on top of the repair.
 *
 * Not repaired, only reported: a row deleted here whose object WorkOS still lists (a
 * delete is final in the mirror). A row tombstoned only by its parent's delete (a
 * cascade) that WorkOS lists comes back, as a newer event would bring it back. A directory group membership is listed as the users
 * of each group (`/directory_users?group=`), an object as its events make it.
 */
import * as Effect from "effect/Effect"
import { newer, type Row } from "./Mapping.ts"
import { metaKeys, type Shape, type StoreError } from "./Store.ts"
import { groupMembershipId, isoTime, type TableName, tables } from "./Tables.ts"

/** The tables a reconcile can compare. */
export const reconcilable = [
  "organizations",
  "organization_domains",
  "users",
  "organization_memberships",
  "directories",
  "directory_users",
  "directory_groups",
  "directory_group_memberships",
  "connections"
] as const satisfies ReadonlyArray<TableName>
export type Reconcilable = (typeof reconcilable)[number]

/** The event id of a repair. */
export const reconcileId = "reconcile"

export interface Findings {
  /** Listed by WorkOS, absent here: inserted. */
  readonly missing: ReadonlyArray<string>
  /** Listed with another object than the row's: updated. */
  readonly changed: ReadonlyArray<string>
  /** Live here, not listed by WorkOS: tombstoned. */
  readonly gone: ReadonlyArray<string>
  /** Deleted here, still listed by WorkOS: reported, not repaired. */
  readonly deletedButListed: ReadonlyArray<string>
}

export type Report = Readonly<Partial<Record<Reconcilable, Findings>>>

/** JSON with sorted keys, to compare objects whatever the order of their keys. */
export const canonical = (value: unknown): string =>
  JSON.stringify(value, (_, v) =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, v[k]])
        )
      : v
  )

/** The row id of a listed object: its id; a group membership's `<group id>:<user id>`. */
export const keyOf = (table: Reconcilable, object: Record<string, unknown>): unknown =>
  table === "directory_group_memberships"
    ? groupMembershipId(String(object.group_id), String(object.user_id))
    : object.id

/** The findings and the repairs of one table (pure). */
export const compare = (
  table: Reconcilable,
  rows: ReadonlyArray<Row>,
  listed: ReadonlyArray<Record<string, unknown>>,
  listedAt: string
): { readonly findings: Findings; readonly repairs: ReadonlyArray<Row> } => {
  const at = isoTime(listedAt)!
  const version = (id: string, object: Record<string, unknown>, deletedAt: string | null): Row => ({
    table,
    id,
    object,
    at,
    eventId: reconcileId,
    deletedAt
  })
  const byId = new Map(rows.map((r) => [r.id, r]))
  const seen = new Set<string>()
  const missing: Array<string> = []
  const changed: Array<string> = []
  const gone: Array<string> = []
  const deletedButListed: Array<string> = []
  const repairs: Array<Row> = []
  for (const object of listed) {
    const id = keyOf(table, object)
    if (typeof id !== "string") continue
    seen.add(id)
    const row = byId.get(id)
    const repair = version(id, object, null)
    if (row === undefined) {
      missing.push(id)
      repairs.push(repair)
    } else if (newer(row, repair)) {
      // Changed by an event after the list was read: the row is the newer truth.
    } else if (
      row.deletedAt !== null &&
      (tables[table].revivable || (row.deletedWith ?? null) !== null)
    ) {
      // A group membership comes back, as a newer `user_added` brings it back; a row
      // its parent's delete tombstoned, as a newer event of its own does.
      missing.push(id)
      repairs.push(repair)
    } else if (row.deletedAt !== null) {
      deletedButListed.push(id)
    } else if (canonical(row.object) !== canonical(object)) {
      changed.push(id)
      repairs.push(repair)
    }
  }
  for (const row of rows) {
    if (seen.has(row.id) || row.deletedAt !== null) continue
    const repair = version(row.id, row.object, at)
    if (newer(row, repair)) continue
    gone.push(row.id)
    repairs.push(repair)
  }
  return { findings: { missing, changed, gone, deletedButListed }, repairs }
}

/** A membership of a directory group, the object its `dsync.group.user_added` makes. */
export const groupMembership = (
  group: Record<string, unknown>,
  userId: string
): Record<string, unknown> => ({
  object: tables.directory_group_memberships.object,
  directory_id: group.directory_id ?? null,
  group_id: group.id,
  user_id: userId
})

/** An organization's domains, as `organization_domains` lists them. */
export const domainsOf = (
  organizations: ReadonlyArray<Record<string, unknown>>
): ReadonlyArray<Record<string, unknown>> =>
  organizations.flatMap((o) =>
    Array.isArray(o.domains)
      ? o.domains.filter((d): d is Record<string, unknown> => typeof d === "object" && d !== null)
      : []
  )

/**
 * Compares each table given with its listed objects and repairs the store, in one
 * transaction; records the report as the last reconcile (`mirror status` shows it).
 */
export const reconcile = (
  store: Shape,
  lists: Readonly<Partial<Record<Reconcilable, ReadonlyArray<Record<string, unknown>>>>>,
  listedAt: Date
): Effect.Effect<Report, StoreError> =>
  Effect.gen(function* () {
    const report: Partial<Record<Reconcilable, Findings>> = {}
    const repairs: Array<Row> = []
    for (const table of reconcilable) {
      const listed = lists[table]
      if (listed === undefined) continue
      const result = compare(table, yield* store.rows(table), listed, listedAt.toISOString())
      report[table] = result.findings
      repairs.push(...result.repairs)
    }
    yield* store.apply(repairs)
    yield* store.setMeta(metaKeys.lastReconcile, `${new Date().toISOString()}: ${summary(report)}`)
    return report
  })

/** One line: `users: 2 missing, 1 changed; connections: no drift`. */
export const summary = (report: Report): string =>
  Object.entries(report)
    .map(([table, f]) => {
      const parts = [
        f.missing.length > 0 ? `${f.missing.length} missing` : "",
        f.changed.length > 0 ? `${f.changed.length} changed` : "",
        f.gone.length > 0 ? `${f.gone.length} gone` : "",
        f.deletedButListed.length > 0 ? `${f.deletedButListed.length} deleted but listed` : ""
      ].filter((p) => p !== "")
      return `${table}: ${parts.length === 0 ? "no drift" : parts.join(", ")}`
    })
    .join("; ")
