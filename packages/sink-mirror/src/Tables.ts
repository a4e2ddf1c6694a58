/**
 * The mirror's tables: one per kind of WorkOS object, each with the columns an
 * application queries (typed), the whole object as WorkOS last sent it (`object`,
 * JSON), the event that last changed the row (`last_event_id`, `last_event_at`) and
 * a tombstone (`deleted_at`). Pure: the stores turn these into SQL.
 */

/** A typed column: its name, its kind, and how to read it from the object. */
export interface Column {
  readonly name: string
  /** `text` (ISO-8601 for times), `time` (a timestamp: text in SQLite, timestamptz in Postgres), `bool`. */
  readonly kind: "text" | "time" | "bool"
  readonly read: (object: any) => string | boolean | null
}

export interface Table {
  /** The table's name, before the configured prefix. */
  readonly name: TableName
  /** The `object` field of the WorkOS objects it holds (`organization`, `directory_user`). */
  readonly object: string
  readonly columns: ReadonlyArray<Column>
  /**
   * A row may come back after it was removed (a user added to a group again: the key
   * is the pair, not an id WorkOS never reuses). For every other table a delete is final.
   */
  readonly revivable: boolean
  /** Columns worth an index (besides the id). */
  readonly indexes: ReadonlyArray<string>
}

export const tableNames = [
  "organizations",
  "organization_domains",
  "users",
  "organization_memberships",
  "directories",
  "directory_users",
  "directory_groups",
  "directory_group_memberships",
  "connections"
] as const
export type TableName = (typeof tableNames)[number]

const str = (value: unknown): string | null =>
  typeof value === "string" ? value : typeof value === "number" ? String(value) : null

/** A timestamp as a canonical ISO-8601 string (so text order is time order), or null. */
export const isoTime = (value: unknown): string | null => {
  if (typeof value !== "string") return null
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? null : new Date(ms).toISOString()
}

const text = (name: string, field = name): Column => ({
  name,
  kind: "text",
  read: (o) => str(o?.[field])
})
const time = (name: string, field = name): Column => ({
  name,
  kind: "time",
  read: (o) => isoTime(o?.[field])
})
const bool = (name: string): Column => ({
  name,
  kind: "bool",
  read: (o) => (typeof o?.[name] === "boolean" ? o[name] : null)
})
/** `role.slug` (a membership's or a directory user's role). */
const role: Column = { name: "role", kind: "text", read: (o) => str(o?.role?.slug) }
const timestamps = [time("created_at"), time("updated_at")]

export const tables: Readonly<Record<TableName, Table>> = {
  organizations: {
    name: "organizations",
    object: "organization",
    columns: [text("name"), text("external_id"), ...timestamps],
    revivable: false,
    indexes: ["name", "external_id"]
  },
  organization_domains: {
    name: "organization_domains",
    object: "organization_domain",
    columns: [
      text("organization_id"),
      text("domain"),
      text("state"),
      text("verification_strategy"),
      ...timestamps
    ],
    revivable: false,
    indexes: ["organization_id", "domain"]
  },
  users: {
    name: "users",
    object: "user",
    columns: [
      text("email"),
      text("first_name"),
      text("last_name"),
      bool("email_verified"),
      text("external_id"),
      time("last_sign_in_at"),
      ...timestamps
    ],
    revivable: false,
    indexes: ["email", "external_id"]
  },
  organization_memberships: {
    name: "organization_memberships",
    object: "organization_membership",
    columns: [
      text("organization_id"),
      text("user_id"),
      text("status"),
      role,
      bool("directory_managed"),
      ...timestamps
    ],
    revivable: false,
    indexes: ["organization_id", "user_id"]
  },
  directories: {
    name: "directories",
    object: "directory",
    columns: [
      text("organization_id"),
      text("name"),
      text("type"),
      text("state"),
      text("domain"),
      ...timestamps
    ],
    revivable: false,
    indexes: ["organization_id"]
  },
  directory_users: {
    name: "directory_users",
    object: "directory_user",
    columns: [
      text("directory_id"),
      text("organization_id"),
      text("idp_id"),
      text("email"),
      text("first_name"),
      text("last_name"),
      text("username"),
      text("state"),
      role,
      ...timestamps
    ],
    revivable: false,
    indexes: ["directory_id", "organization_id", "email"]
  },
  directory_groups: {
    name: "directory_groups",
    object: "directory_group",
    columns: [
      text("directory_id"),
      text("organization_id"),
      text("idp_id"),
      text("name"),
      ...timestamps
    ],
    revivable: false,
    indexes: ["directory_id", "organization_id"]
  },
  directory_group_memberships: {
    name: "directory_group_memberships",
    object: "directory_group_membership",
    columns: [text("directory_id"), text("group_id"), text("user_id")],
    revivable: true,
    indexes: ["group_id", "user_id"]
  },
  connections: {
    name: "connections",
    object: "connection",
    columns: [
      text("organization_id"),
      text("name"),
      text("connection_type"),
      text("state"),
      ...timestamps
    ],
    revivable: false,
    indexes: ["organization_id"]
  }
}

/** The columns every table has besides its typed ones, in order. */
export const commonColumns = [
  "id",
  "object",
  "last_event_id",
  "last_event_at",
  "deleted_at",
  "deleted_with"
]

/**
 * What a deleted object takes with it, though WorkOS sends no event for each: the rows
 * of `child` whose `column` names it. WorkOS documents it for a directory (a sole
 * `dsync.deleted`: "dsync.user.deleted and dsync.group.deleted events will not be
 * sent") and a group (no `dsync.group.user_removed` for its members); for an
 * organization (its domains and memberships) and a directory user (its group
 * memberships) it documents no event either, and its lists drop them. A cascade
 * tombstones a child only as of the parent's delete: a child changed by a later event
 * stays as that event says.
 */
export interface Cascade {
  readonly parent: TableName
  readonly child: TableName
  readonly column: string
}

export const cascades: ReadonlyArray<Cascade> = [
  { parent: "organizations", child: "organization_domains", column: "organization_id" },
  { parent: "organizations", child: "organization_memberships", column: "organization_id" },
  { parent: "directories", child: "directory_users", column: "directory_id" },
  { parent: "directories", child: "directory_groups", column: "directory_id" },
  { parent: "directories", child: "directory_group_memberships", column: "directory_id" },
  { parent: "directory_groups", child: "directory_group_memberships", column: "group_id" },
  { parent: "directory_users", child: "directory_group_memberships", column: "user_id" }
]

/** The id of a group membership row: the group's and the user's ids. */
export const groupMembershipId = (groupId: string, userId: string): string => `${groupId}:${userId}`

/** Is `name` one of the tables? */
export const isTableName = (name: string): name is TableName =>
  (tableNames as ReadonlyArray<string>).includes(name)
