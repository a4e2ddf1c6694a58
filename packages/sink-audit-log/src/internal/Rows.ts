/** How records map to SQL rows (shared by the SQLite and Postgres stores). */
import type { ReadBack } from "../Chain.ts"
import type { Actor, AuditRecord, StoredRecord, Target } from "../Record.ts"

export interface Row {
  readonly seq: number | string | bigint
  readonly id: string
  readonly type: string
  readonly created_at: string
  readonly organization_id: string | null
  readonly actor_id: string | null
  readonly actor_name: string | null
  readonly actor: string | null
  readonly targets: string
  readonly ip_address: string | null
  readonly user_agent: string | null
  readonly event: string
  /** Where the event breaks the spec (`path: reason`); null when it matches it. */
  readonly schema_mismatch: string | null
  readonly prev_hash: string
  readonly hash: string
}

export const columns = [
  "seq",
  "id",
  "type",
  "created_at",
  "organization_id",
  "actor_id",
  "actor_name",
  "actor",
  "targets",
  "ip_address",
  "user_agent",
  "event",
  "schema_mismatch",
  "prev_hash",
  "hash"
] as const

export const toRow = (r: StoredRecord): Row => ({
  seq: r.seq,
  id: r.id,
  type: r.type,
  created_at: r.created_at,
  organization_id: r.organization_id,
  actor_id: r.actor?.id ?? null,
  actor_name: r.actor?.name ?? null,
  actor: r.actor === null ? null : JSON.stringify(r.actor),
  targets: JSON.stringify(r.targets),
  ip_address: r.ip_address,
  user_agent: r.user_agent,
  event: JSON.stringify(r.event),
  schema_mismatch: r.schema_mismatch ?? null,
  prev_hash: r.prev_hash,
  hash: r.hash
})

export const fromRow = (row: Row): StoredRecord => ({
  seq: Number(row.seq),
  id: row.id,
  type: row.type,
  created_at: row.created_at,
  organization_id: row.organization_id,
  actor: row.actor === null ? null : (JSON.parse(row.actor) as Actor),
  targets: JSON.parse(row.targets) as ReadonlyArray<Target>,
  ip_address: row.ip_address,
  user_agent: row.user_agent,
  event: JSON.parse(row.event) as unknown,
  // Absent, not null, when the event matched the spec: the hash covers it only when present.
  ...(row.schema_mismatch === null ? {} : { schema_mismatch: row.schema_mismatch }),
  prev_hash: row.prev_hash,
  hash: row.hash
})

/**
 * `fromRow` for `verify`: `actor_id` and `actor_name` (what `--actor` queries match)
 * are copies of the hashed `actor` JSON, not hashed themselves, so they are compared
 * with it here.
 */
export const fromRowToVerify = (row: Row): ReadBack => {
  const record = fromRow(row)
  const differ = (
    [
      ["actor_id", row.actor_id, record.actor?.id ?? null],
      ["actor_name", row.actor_name, record.actor?.name ?? null]
    ] as const
  ).filter(([, column, hashed]) => column !== hashed)
  if (differ.length === 0) return record
  return {
    ...record,
    mismatch: differ
      .map(
        ([name, column, hashed]) =>
          `its ${name} column says ${JSON.stringify(column)} but its actor says ${JSON.stringify(hashed)}`
      )
      .join("; ")
  }
}

/** The message when the chain's row (its anchor and head) is gone from a SQL store. */
export const chainRowMissing =
  "the chain's head row is missing (table audit_chain has no row): the store was damaged or tampered with; restore it from a backup"

/** Keeps the first record of each event id, in order. */
export const dedupe = (records: ReadonlyArray<AuditRecord>): ReadonlyArray<AuditRecord> => {
  const seen = new Set<string>()
  return records.filter((r) => {
    if (seen.has(r.id)) return false
    seen.add(r.id)
    return true
  })
}

/** `n` items at a time. */
export const chunks = <A>(items: ReadonlyArray<A>, n: number): ReadonlyArray<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n))
  return out
}

/** The SQL of a query over `audit_records`, with placeholders made by `at(1)`, `at(2)`, ... */
export const selectSql = (
  query: {
    readonly types?: ReadonlyArray<string>
    readonly org?: string
    readonly actor?: string
    readonly since?: Date
    readonly until?: Date
    readonly mismatched?: boolean
    readonly limit?: number
    readonly before?: { readonly createdAt: string; readonly seq: number }
  },
  defaultLimit: number,
  like: (pattern: string) => string,
  at: (n: number) => string
): { readonly sql: string; readonly params: ReadonlyArray<string | number> } => {
  const params: Array<string | number> = []
  const param = (v: string | number): string => {
    params.push(v)
    return at(params.length)
  }
  // Filters other than the actor, written anew (with their own placeholders) for each use.
  const filters = (): Array<string> => {
    const where: Array<string> = []
    const types = query.types ?? []
    if (types.length > 0 && !types.includes("*")) {
      where.push(
        `(${types
          .map((t) =>
            t.includes("*") ? `type LIKE ${param(like(t))} ESCAPE '\\'` : `type = ${param(t)}`
          )
          .join(" OR ")})`
      )
    }
    if (query.org !== undefined) where.push(`organization_id = ${param(query.org)}`)
    if (query.since !== undefined) where.push(`created_at >= ${param(query.since.toISOString())}`)
    if (query.until !== undefined) where.push(`created_at < ${param(query.until.toISOString())}`)
    if (query.mismatched === true) where.push("schema_mismatch IS NOT NULL")
    const before = query.before
    if (before !== undefined)
      where.push(
        `(created_at < ${param(before.createdAt)} OR (created_at = ${param(before.createdAt)} AND seq < ${param(before.seq)}))`
      )
    return where
  }
  const order = "ORDER BY created_at DESC, seq DESC"
  const limit = query.limit ?? defaultLimit
  const cols = columns.join(", ")
  const select = (where: ReadonlyArray<string>) =>
    `SELECT ${cols} FROM audit_records${where.length > 0 ? ` WHERE ${where.join(" AND ")}` : ""} ${order} LIMIT ${param(limit)}`
  if (query.actor === undefined) return { sql: select(filters()), params }
  // An actor is an id or a name: one ordered index scan for each, merged. (One scan with
  // an OR makes planners walk the time index past millions of rows for a rare actor.)
  const byId = select([`actor_id = ${param(query.actor)}`, ...filters()])
  const byName = select([`actor_name = ${param(query.actor)}`, ...filters()])
  return {
    sql: `SELECT ${cols} FROM (SELECT ${cols} FROM (${byId}) AS by_id UNION SELECT ${cols} FROM (${byName}) AS by_name) AS matched ${order} LIMIT ${param(limit)}`,
    params
  }
}

/** The messages of an error and its causes ("Query failed: injected failure"), without repeats. */
export const describeCause = (cause: unknown): string => {
  const messages: Array<string> = []
  let current: unknown = cause
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    const message =
      current instanceof Error || (typeof current === "object" && "message" in current)
        ? String((current as { message: unknown }).message)
        : String(current)
    if (message !== "" && !messages.some((m) => m.includes(message))) messages.push(message)
    current = typeof current === "object" ? (current as { cause?: unknown }).cause : undefined
  }
  return messages.join(": ")
}
