/**
 * Tamper evidence: every record carries a hash chained to the previous record's.
 *
 *   hash = lowercase hex of SHA-256( UTF-8( prev_hash + canonical(record) ) )
 *
 * where `prev_hash` is the previous record's hash (64 lowercase hex characters; for
 * the first record ever, 64 zeros; after retention, the last deleted record's hash,
 * kept as the anchor) and `canonical(record)` is the canonical JSON of the record's
 * content: the `AuditRecord` fields (id, type, created_at, organization_id, actor,
 * targets, ip_address, user_agent, event, and schema_mismatch when the event breaks
 * the spec), without `seq`, `prev_hash` and `hash`. A record without a
 * schema_mismatch hashes as it did before the field existed (an absent key is left
 * out), so records kept by earlier versions verify unchanged.
 *
 * Canonical JSON (the JSON Canonicalization Scheme of RFC 8785 for the JSON WorkOS
 * sends): no whitespace; object keys sorted by UTF-16 code units; strings and numbers
 * written as `JSON.stringify` writes them; arrays keep their order; keys whose value
 * is `undefined` are left out.
 *
 * Changing any byte of a record, or removing, inserting or moving one, breaks the
 * links from there on, and `walk` names the first record where that shows.
 */
import { hash as digest } from "node:crypto"
import type { AuditRecord, StoredRecord } from "./Record.ts"

/** The `prev_hash` of the first record of a new store. */
export const genesis = "0".repeat(64)

/**
 * Canonical JSON of any JSON value (see the module comment).
 *
 * Fast path: the value with every object's keys in canonical order (objects copied
 * only where their keys are out of order), written by the engine's `JSON.stringify`,
 * which then writes exactly what `writeCanonical` would. Values where the two could
 * differ (a `toJSON`, a class instance, a function, a key that is an array index or
 * `__proto__` in an object that needs reordering) take `writeCanonical`.
 */
export const canonicalJson = (value: unknown): string => {
  const ordered = inCanonicalOrder(value)
  return ordered === notPlain ? writeCanonical(value) : (JSON.stringify(ordered) ?? "null")
}

const notPlain: unique symbol = Symbol("notPlain")

const inCanonicalOrder = (value: unknown): unknown => {
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
    case "undefined":
      return value
    case "object":
      break
    default:
      return notPlain
  }
  if (value === null) return value
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return notPlain
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return notPlain
    let copy: Array<unknown> | undefined
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      const ordered = inCanonicalOrder(item)
      if (ordered === notPlain) return notPlain
      if (ordered !== item) {
        copy ??= value.slice()
        copy[i] = ordered
      }
    }
    return copy ?? value
  }
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return notPlain
  const object = value as Record<string, unknown>
  const keys = Object.keys(object)
  let sorted = true
  for (let i = 1; i < keys.length && sorted; i++) sorted = keys[i - 1]! < keys[i]!
  if (sorted) {
    // Kept as it is unless a value inside needs reordering; then copied from there on.
    let copy: Record<string, unknown> | undefined
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!
      const item = object[key]
      const ordered = inCanonicalOrder(item)
      if (ordered === notPlain) return notPlain
      if (ordered !== item && copy === undefined) {
        copy = {}
        for (let j = 0; j < i; j++) copy[keys[j]!] = object[keys[j]!]
      }
      if (copy !== undefined) copy[key] = ordered
    }
    // An own "__proto__" key would set the copy's prototype instead.
    return copy !== undefined && keys.includes("__proto__") ? notPlain : (copy ?? object)
  }
  sortKeys(keys)
  const copy: Record<string, unknown> = {}
  for (const key of keys) {
    // Engines list array-index keys ("0", "12") first, in numeric order, whatever the
    // insertion order: a copy could not hold them in text order.
    const c = key.charCodeAt(0)
    if ((c >= 48 && c <= 57) || key === "__proto__") return notPlain
    const ordered = inCanonicalOrder(object[key])
    if (ordered === notPlain) return notPlain
    copy[key] = ordered
  }
  return copy
}

/**
 * Sorts keys in place by UTF-16 code units, as RFC 8785 asks (and as `<` compares
 * strings). An object's keys are few, and an insertion sort allocates nothing, where
 * `Array.prototype.sort` allocates a work array per call: with several objects per
 * event, that was most of the garbage the audit-log sink made.
 */
const sortKeys = (keys: Array<string>): Array<string> => {
  if (keys.length > 32) return keys.sort()
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!
    let j = i - 1
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!
      j--
    }
    keys[j + 1] = key
  }
  return keys
}

/** Canonical JSON written out piece by piece: the definition, for any value. */
const writeCanonical = (value: unknown): string => {
  if (value === null || typeof value !== "object") {
    // Non-finite numbers are not JSON; JSON.stringify writes them as null.
    return JSON.stringify(value) ?? "null"
  }
  if (Array.isArray(value)) {
    let out = "["
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ","
      const item: unknown = value[i]
      out += item === undefined ? "null" : writeCanonical(item)
    }
    return `${out}]`
  }
  const object = value as Record<string, unknown>
  const keys = sortKeys(Object.keys(object))
  let out = "{"
  let first = true
  for (const key of keys) {
    const item = object[key]
    if (item === undefined) continue
    out += `${first ? "" : ","}${JSON.stringify(key)}:${writeCanonical(item)}`
    first = false
  }
  return `${out}}`
}

/** The hashed content of a record: everything but its place in the chain. */
export const content = (record: AuditRecord): AuditRecord => ({
  id: record.id,
  type: record.type,
  created_at: record.created_at,
  organization_id: record.organization_id,
  actor: record.actor,
  targets: record.targets,
  ip_address: record.ip_address,
  user_agent: record.user_agent,
  event: record.event,
  ...(record.schema_mismatch === undefined ? {} : { schema_mismatch: record.schema_mismatch })
})

/** The canonical JSON of a record's hashed content. */
export const canonicalContent = (record: AuditRecord): string =>
  canonicalJson(sortedContent(record))

/** The hash of a record that follows `prevHash`. */
export const hash = (prevHash: string, record: AuditRecord): string =>
  // The one-shot digest: no Hash object per record.
  digest("sha256", prevHash + canonicalContent(record), "hex")

/** `content` with its keys already in canonical order, so that only the event may need a copy. */
const sortedContent = (record: AuditRecord) => ({
  actor: record.actor,
  created_at: record.created_at,
  event: record.event,
  id: record.id,
  ip_address: record.ip_address,
  organization_id: record.organization_id,
  // Left out when undefined, as every key whose value is undefined.
  schema_mismatch: record.schema_mismatch,
  targets: record.targets,
  type: record.type,
  user_agent: record.user_agent
})

/** Links new records after the chain's head, giving each its `seq` and hashes. */
export const link = (
  head: { readonly seq: number; readonly hash: string },
  records: ReadonlyArray<AuditRecord>
): ReadonlyArray<StoredRecord> => {
  let seq = head.seq
  let prev = head.hash
  return records.map((record) => {
    seq += 1
    const h = hash(prev, record)
    const stored: StoredRecord = { ...content(record), seq, prev_hash: prev, hash: h }
    prev = h
    return stored
  })
}

// ---------------------------------------------------------------------------
// Verification

/** Where the kept chain starts: the last deleted record (or the genesis). */
export interface Anchor {
  /** The `seq` of the last deleted record, 0 when none was deleted. */
  readonly seq: number
  readonly hash: string
}

export const genesisAnchor: Anchor = { seq: 0, hash: genesis }

/** What the store says its newest record is, written with every batch. */
export interface Head {
  readonly seq: number
  readonly hash: string
  /** How many records the store holds. */
  readonly count: number
}

export type ProblemKind = "modified" | "deleted" | "inserted" | "reordered"

/** The first place where the chain does not hold. */
export interface Problem {
  readonly kind: ProblemKind
  /** The record named (its seq as stored, and its event id); null for records missing at the end. */
  readonly seq: number | null
  readonly id: string | null
  readonly message: string
}

export interface Report {
  /** How many records were checked. */
  readonly records: number
  readonly anchor: Anchor
  /** The hash of the last record (the anchor's when the store is empty). */
  readonly headHash: string
  /** The first problem found; null when the whole chain holds. */
  readonly problem: Problem | null
  /**
   * Records after the head the store named when verify began (JSONL: appended while
   * verify ran, or a batch a crash left unfinished): not checked. Absent when none.
   */
  readonly newer?: number
}

/**
 * A record as a store reads it back for `walk`, with what the store found wrong
 * outside the hashed content.
 */
export interface ReadBack extends StoredRecord {
  /** A stored copy of hashed content that disagrees with it (a query column such as `actor_name`). */
  readonly mismatch?: string
  /** Set when what was read is not a record at all: what and where ("line 51 of ... is not a record"). */
  readonly notARecord?: string
}

/** A report of a store whose chain cannot be walked: a part it needs is missing. */
export const missing = (message: string, anchor: Anchor = genesisAnchor): Report => ({
  records: 0,
  anchor,
  headHash: anchor.hash,
  problem: { kind: "deleted", seq: null, id: null, message }
})

const name = (r: StoredRecord): string => `record #${r.seq} (event ${r.id})`

/**
 * Walks records in chain order (what `records` yields) from the anchor and reports
 * the first problem. Keeps O(1) memory; only when a link breaks does it read the
 * records once more (`rest`) to tell a moved record from a missing one.
 */
export const walk = async (options: {
  readonly anchor: Anchor
  readonly head: Head | null
  readonly records: AsyncIterable<ReadBack> | Iterable<ReadBack>
  /** The records again, from the start, to look ahead when a link breaks. */
  readonly again: () => AsyncIterable<ReadBack> | Iterable<ReadBack>
}): Promise<Report> => {
  const { anchor, head } = options
  let prev: { seq: number; hash: string; record: StoredRecord | null } = {
    seq: anchor.seq,
    hash: anchor.hash,
    record: null
  }
  let beforePrevHash: string | null = null
  let count = 0
  const report = (problem: Problem | null): Report => ({
    records: count,
    anchor,
    headHash: prev.hash,
    problem
  })

  for await (const r of options.records) {
    count += 1
    if (r.notARecord !== undefined) {
      return report({ kind: "modified", seq: null, id: null, message: r.notARecord })
    }
    if (hash(r.prev_hash, r) !== r.hash) {
      return report({
        kind: "modified",
        seq: r.seq,
        id: r.id,
        message: `${name(r)} was modified: its content no longer matches its hash`
      })
    }
    if (r.mismatch !== undefined) {
      return report({
        kind: "modified",
        seq: r.seq,
        id: r.id,
        message: `${name(r)} was modified: ${r.mismatch}`
      })
    }
    if (r.prev_hash !== prev.hash) {
      const after = prev.record === null ? "the anchor" : name(prev.record)
      // r links to the record before prev: prev was slipped in between them.
      if (prev.record !== null && beforePrevHash !== null && r.prev_hash === beforePrevHash) {
        return report({
          kind: "inserted",
          seq: prev.record.seq,
          id: prev.record.id,
          message: `${name(prev.record)} was inserted: ${name(r)} links to the record before it`
        })
      }
      // The true successor of prev (or r's true predecessor) is somewhere later: records were moved.
      let moved = false
      let seen = 0
      for await (const other of options.again()) {
        seen += 1
        if (seen <= count) continue
        if (other.prev_hash === prev.hash || other.hash === r.prev_hash) {
          moved = true
          break
        }
      }
      if (moved) {
        return report({
          kind: "reordered",
          seq: r.seq,
          id: r.id,
          message: `${name(r)} is out of order: it does not follow ${after}, and the record that does comes later`
        })
      }
      return report({
        kind: "deleted",
        seq: r.seq,
        id: r.id,
        message: `record(s) between ${after} and ${name(r)} were deleted: it links to a hash no kept record has`
      })
    }
    if (r.seq <= prev.seq) {
      // Hashes link but the numbering goes back: a copy of a record was slipped in.
      return report({
        kind: "inserted",
        seq: r.seq,
        id: r.id,
        message: `${name(r)} was inserted: its seq does not follow ${prev.seq}`
      })
    }
    beforePrevHash = prev.hash
    prev = { seq: r.seq, hash: r.hash, record: r }
  }

  if (head !== null && (head.hash !== prev.hash || head.count !== count)) {
    if (head.seq > prev.seq) {
      return report({
        kind: "deleted",
        seq: null,
        id: null,
        message: `record(s) after ${prev.record === null ? "the anchor" : name(prev.record)} were deleted: the store's head is record #${head.seq} (${head.hash})`
      })
    }
    return report({
      kind: count > head.count ? "inserted" : "modified",
      seq: prev.record?.seq ?? null,
      id: prev.record?.id ?? null,
      message: `the store holds ${count} record(s) ending with hash ${prev.hash}, but its head says ${head.count} ending with ${head.hash}`
    })
  }
  return report(null)
}
