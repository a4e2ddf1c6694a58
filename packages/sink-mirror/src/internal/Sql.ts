/**
 * The SQL of the mirror's tables, for SQLite and Postgres: table names with the
 * configured prefix (and Postgres schema), the migrations, and the upsert that merges
 * a row version exactly as `Mapping.merge` does.
 */
import type { Row } from "../Mapping.ts"
import {
  type Cascade,
  type Column,
  cascades,
  type Table,
  type TableName,
  tableNames,
  tables
} from "../Tables.ts"

export type Dialect = "sqlite" | "postgres"

export interface Naming {
  /** Prepended to every table name (`workos_`). */
  readonly prefix: string
  /** The Postgres schema the tables are in (`public` when absent). */
  readonly schema?: string | undefined
}

/** A quoted, qualified table name. */
export const tableName = (naming: Naming, name: string): string =>
  naming.schema === undefined
    ? `"${naming.prefix}${name}"`
    : `"${naming.schema}"."${naming.prefix}${name}"`

export const metaTable = (naming: Naming): string => tableName(naming, "mirror_meta")

const columnType = (dialect: Dialect, column: Column): string => {
  if (dialect === "sqlite") return column.kind === "bool" ? "INTEGER" : "TEXT"
  return column.kind === "bool" ? "boolean" : column.kind === "time" ? "timestamptz" : "text"
}

/** The statements of migration 1: every table and its indexes. */
const createTables = (dialect: Dialect, naming: Naming): ReadonlyArray<string> =>
  tableNames.flatMap((name) => {
    const table = tables[name]
    const t = tableName(naming, name)
    const pg = dialect === "postgres"
    // Event ids compare byte-wise, as JavaScript compares them (`Mapping.newer`).
    const idType = pg ? 'text COLLATE "C"' : "TEXT"
    const timeType = pg ? "timestamptz" : "TEXT"
    const columns = [
      `id ${idType} PRIMARY KEY`,
      ...table.columns.map((c) => `${c.name} ${columnType(dialect, c)}`),
      `object ${pg ? "jsonb" : "TEXT"} NOT NULL`,
      `last_event_id ${idType} NOT NULL`,
      `last_event_at ${timeType} NOT NULL`,
      `deleted_at ${timeType}`
    ]
    const index = (column: string) =>
      `CREATE INDEX "${naming.prefix}${name}_${column}" ON ${t} (${column})`
    return [`CREATE TABLE ${t} (${columns.join(", ")})`, ...table.indexes.map(index)]
  })

/**
 * Migration 2: `deleted_with` on every table (the parent whose delete tombstoned the
 * row, see `cascadeSql`), and an index for the cascade of a directory to its group
 * memberships.
 */
const addDeletedWith = (dialect: Dialect, naming: Naming): ReadonlyArray<string> => [
  ...tableNames.map(
    (name) =>
      `ALTER TABLE ${tableName(naming, name)} ADD COLUMN deleted_with ${dialect === "postgres" ? "text" : "TEXT"}`
  ),
  `CREATE INDEX "${naming.prefix}directory_group_memberships_directory_id" ON ${tableName(naming, "directory_group_memberships")} (directory_id)`
]

/** Versioned migrations: entry N-1 takes a store from version N-1 to N. */
export const migrations = (
  dialect: Dialect,
  naming: Naming
): ReadonlyArray<ReadonlyArray<string>> => [
  createTables(dialect, naming),
  addDeletedWith(dialect, naming)
]

/** The columns of an upsert, in order. */
export const upsertColumns = (table: Table): ReadonlyArray<string> => [
  "id",
  ...table.columns.map((c) => c.name),
  "object",
  "last_event_id",
  "last_event_at",
  "deleted_at"
]

/**
 * `INSERT ... ON CONFLICT (id) DO UPDATE` of `rows` rows, merging as `Mapping.merge`
 * does: the newer version's values, and for a table whose deletes are final the
 * earliest `deleted_at` of the two. `placeholder(i)` is the i-th parameter (from 0).
 *
 * A cascade's tombstone (`deleted_with` set) is not the row's own: the upsert drops
 * it, and `cascadeSql`, run after the batch's upserts over the rows they touched,
 * sets it again where it still holds.
 */
export const upsertSql = (
  dialect: Dialect,
  naming: Naming,
  name: TableName,
  rows: number
): string => {
  const table = tables[name]
  const t = tableName(naming, name)
  const columns = upsertColumns(table)
  const n = columns.length
  const placeholder = (i: number) => (dialect === "sqlite" ? "?" : `$${i + 1}`)
  const values = Array.from(
    { length: rows },
    (_, r) => `(${columns.map((_, c) => placeholder(r * n + c)).join(", ")})`
  ).join(", ")
  const newer = `(excluded.last_event_at > ${t}.last_event_at OR (excluded.last_event_at = ${t}.last_event_at AND excluded.last_event_id > ${t}.last_event_id))`
  const pick = (column: string) =>
    `${column} = CASE WHEN ${newer} THEN excluded.${column} ELSE ${t}.${column} END`
  // The row's own tombstone: none while a cascade's stands in its place.
  const cascaded = `${t}.deleted_with IS NOT NULL`
  const deletedAt = table.revivable
    ? `deleted_at = CASE WHEN ${newer} THEN excluded.deleted_at WHEN ${cascaded} THEN NULL ELSE ${t}.deleted_at END`
    : `deleted_at = CASE WHEN ${cascaded} OR ${t}.deleted_at IS NULL THEN excluded.deleted_at WHEN excluded.deleted_at IS NULL THEN ${t}.deleted_at WHEN excluded.deleted_at < ${t}.deleted_at THEN excluded.deleted_at ELSE ${t}.deleted_at END`
  const set = [...columns.slice(1, -1).map(pick), deletedAt, "deleted_with = NULL"]
  return `INSERT INTO ${t} (${columns.join(", ")}) VALUES ${values} ON CONFLICT (id) DO UPDATE SET ${set.join(", ")}`
}

/** The cascades into each child table. */
const cascadesInto = (child: TableName): ReadonlyArray<Cascade> =>
  cascades.filter((c) => c.child === child)

/** The tables some parent's delete cascades into. */
export const cascadeChildren: ReadonlyArray<TableName> = tableNames.filter(
  (name) => cascadesInto(name).length > 0
)

/**
 * The statement that sets the cascade tombstones of `child` again over the rows in
 * scope: those whose id is in parameter 0 (rows the batch upserted) or whose parent is
 * in parameter 1 + i (parents the batch deleted, cascade i of `cascadesInto(child)`);
 * each parameter a JSON array of ids (`cascadeParams`).
 *
 * A row in scope that is not deleted itself takes the earliest own delete
 * (`deleted_at`, `deleted_with` null) of its parents that is at or after the row's
 * last change (`last_event_at`), ties to the smallest parent id; none: it is live (a
 * row changed after its parent's delete stays as it is). A function of the row and
 * its parents' deletes, so any order of delivery ends the same.
 */
export const cascadeSql = (dialect: Dialect, naming: Naming, child: TableName): string => {
  const into = cascadesInto(child)
  const t = tableName(naming, child)
  // `= ANY (ARRAY(...))` lets Postgres look each id up in the index (`IN (SELECT ...)` under OR scans the table).
  const inIds = (column: string, i: number) =>
    dialect === "sqlite"
      ? `c.${column} IN (SELECT value FROM json_each(?))`
      : `c.${column} = ANY (ARRAY(SELECT jsonb_array_elements_text($${i + 1}::jsonb)))`
  const parents = into
    .map(
      (cascade) =>
        `SELECT p.deleted_at, p.id FROM ${tableName(naming, cascade.parent)} AS p WHERE p.id = c.${cascade.column} AND p.deleted_at IS NOT NULL AND p.deleted_with IS NULL AND c.last_event_at <= p.deleted_at`
    )
    .join(" UNION ALL ")
  const scope = `(${[inIds("id", 0), ...into.map((cascade, i) => inIds(cascade.column, i + 1))].join(" OR ")})`
  // Rows that would stay as they are (live, no parent deleted after them) are not written.
  return `UPDATE ${t} AS c SET (deleted_at, deleted_with) = (${parents} ORDER BY 1, 2 LIMIT 1) WHERE (c.deleted_with IS NOT NULL OR (c.deleted_at IS NULL AND EXISTS (${parents}))) AND ${scope}`
}

/**
 * The parameters of `cascadeSql(child)` for a batch's rows, or undefined when the
 * batch touches no row of `child` and deletes none of its parents.
 */
export const cascadeParams = (
  child: TableName,
  rows: ReadonlyArray<Row>
): ReadonlyArray<string> | undefined => {
  const touched = rows.filter((r) => r.table === child).map((r) => r.id)
  const deleted = cascadesInto(child).map((cascade) =>
    rows.filter((r) => r.table === cascade.parent && r.deletedAt !== null).map((r) => r.id)
  )
  if (touched.length === 0 && deleted.every((ids) => ids.length === 0)) return undefined
  return [JSON.stringify(touched), ...deleted.map((ids) => JSON.stringify(ids))]
}

/**
 * The Postgres upsert of any number of rows in one parameter: a JSON array of
 * objects keyed by column (`recordsetRows`), expanded by `jsonb_to_recordset`. One
 * statement text per table whatever the batch (prepared once), and no limit on
 * parameters; merges as `upsertSql` does.
 */
export const recordsetUpsertSql = (naming: Naming, name: TableName): string => {
  const table = tables[name]
  const columns = upsertColumns(table)
  const types = [
    "id text",
    ...table.columns.map((c) => `${c.name} ${columnType("postgres", c)}`),
    "object jsonb",
    "last_event_id text",
    "last_event_at timestamptz",
    "deleted_at timestamptz"
  ]
  const single = upsertSql("postgres", naming, name, 1)
  const conflict = single.slice(single.indexOf(" ON CONFLICT"))
  return `INSERT INTO ${tableName(naming, name)} (${columns.join(", ")}) SELECT ${columns.join(", ")} FROM jsonb_to_recordset($1::jsonb) AS r(${types.join(", ")})${conflict}`
}

/** The one parameter of `recordsetUpsertSql`: the rows as JSON. */
export const recordsetRows = (rows: ReadonlyArray<Row>): string =>
  JSON.stringify(
    rows.map((row) => {
      const out: Record<string, unknown> = { id: row.id }
      for (const column of tables[row.table].columns) out[column.name] = column.read(row.object)
      out.object = row.object
      out.last_event_id = row.eventId
      out.last_event_at = row.at
      out.deleted_at = row.deletedAt
      return out
    })
  )

/** The parameters of one row of an upsert, in `upsertColumns` order. */
export const rowParams = (dialect: Dialect, row: Row): Array<string | number | boolean | null> => {
  const table = tables[row.table]
  const out: Array<string | number | boolean | null> = [row.id]
  for (const column of table.columns) {
    const value = column.read(row.object)
    out.push(dialect === "sqlite" && typeof value === "boolean" ? (value ? 1 : 0) : value)
  }
  out.push(JSON.stringify(row.object), row.eventId, row.at, row.deletedAt)
  return out
}

/** The SELECT of every row of a table, for `Store.rows`. */
export const selectRowsSql = (dialect: Dialect, naming: Naming, name: TableName): string => {
  const t = tableName(naming, name)
  return dialect === "sqlite"
    ? `SELECT id, object, last_event_id, last_event_at, deleted_at, deleted_with FROM ${t} ORDER BY id`
    : `SELECT id, object::text AS object, last_event_id, to_char(last_event_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS last_event_at, to_char(deleted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS deleted_at, deleted_with FROM ${t} ORDER BY id`
}

export interface SelectedRow {
  readonly id: string
  readonly object: string
  readonly last_event_id: string
  readonly last_event_at: string
  readonly deleted_at: string | null
  readonly deleted_with: string | null
}

export const fromSelected = (table: TableName, r: SelectedRow): Row => ({
  table,
  id: r.id,
  object: JSON.parse(r.object),
  at: r.last_event_at,
  eventId: r.last_event_id,
  deletedAt: r.deleted_at,
  deletedWith: r.deleted_with
})

export const countSql = (naming: Naming, name: TableName): string =>
  `SELECT count(*) - count(deleted_at) AS live, count(deleted_at) AS deleted FROM ${tableName(naming, name)}`

/** A prefix or schema name that is safe to put in SQL unquoted-by-user: letters, digits, `_`. */
export const identifierPattern = /^[A-Za-z_][A-Za-z0-9_]*$/
