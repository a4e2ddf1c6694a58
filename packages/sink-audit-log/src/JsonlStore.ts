/**
 * The JSONL store: a folder of append-only files, one per UTC day of writing
 * (`2026-11-23.jsonl`), one record per line, with `fsync` after every batch.
 * Closed days can be gzipped (`2026-11-22.jsonl.gz`).
 *
 * A batch's last line carries `"commit":true`. A crash mid-batch leaves lines
 * after the last commit; opening the store cuts them off, so a batch is all or
 * nothing. `head.json` says what the newest record is (to tell a cut-off tail);
 * `meta.json` holds the schema version and the retention anchor.
 *
 * Only one process may write a folder at a time. Queries read every file: fine for
 * thousands of records a day; use SQLite or Postgres for fast queries over millions.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import * as readline from "node:readline"
import { pipeline } from "node:stream/promises"
import * as zlib from "node:zlib"
import { EventPattern } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as Chain from "./Chain.ts"
import { type Files, nodeFiles, writeAll } from "./internal/Files.ts"
import { dedupe } from "./internal/Rows.ts"
import type { AuditRecord, StoredRecord } from "./Record.ts"
import {
  defaultLimit,
  openedReadOnly,
  type PruneOptions,
  SchemaTooNew,
  type Shape,
  Store,
  type StoreError,
  schemaTooOld,
  schemaVersion,
  storeFailure
} from "./Store.ts"

export interface Options {
  readonly directory: string
  /** Gzip the files of days that are over (default false). */
  readonly gzip?: boolean
  /**
   * For `audit verify` and `audit query`: read the folder as it is, writing and repairing
   * nothing (a missing `meta.json` or `head.json` is for verify to report). Default false.
   */
  readonly readOnly?: boolean
  /** @internal The file operations appends use (tests hand in one that fails like a full disk). */
  readonly files?: Files
}

const format = "workos-relay-audit-log-jsonl"

interface Meta {
  readonly format: string
  readonly schema_version: number
  readonly anchor: Chain.Anchor
}

const dayFile = /^(\d{4}-\d{2}-\d{2})\.jsonl(\.gz)?$/

const today = (): string => new Date().toISOString().slice(0, 10)

/**
 * Writes a small file so that it is either the old or the new content, never half.
 * Returns once the new content is in place (renamed); the folder's fsync after that
 * is `syncDir`'s, so that a caller can tell "not written" from "written, not synced".
 */
const replaceFile = (files: Files, file: string, text: string): void => {
  const tmp = `${file}.tmp`
  const fd = files.openSync(tmp, "w")
  try {
    writeAll(files, fd, Buffer.from(text, "utf8"), tmp)
    files.fsyncSync(fd)
  } finally {
    files.closeSync(fd)
  }
  files.renameSync(tmp, file)
}

const writeAtomic = (file: string, text: string, files: Files = nodeFiles): void => {
  replaceFile(files, file, text)
  syncDir(path.dirname(file))
}

const syncDir = (dir: string): void => {
  const fd = fs.openSync(dir, "r")
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

const readJson = <A>(file: string): A | undefined =>
  fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as A) : undefined

/** A line as written: the stored record plus the batch's commit mark. */
const toLine = (r: StoredRecord, commit: boolean): string =>
  `${JSON.stringify({
    seq: r.seq,
    id: r.id,
    type: r.type,
    created_at: r.created_at,
    organization_id: r.organization_id,
    actor: r.actor,
    targets: r.targets,
    ip_address: r.ip_address,
    user_agent: r.user_agent,
    event: r.event,
    ...(r.schema_mismatch === undefined ? {} : { schema_mismatch: r.schema_mismatch }),
    prev_hash: r.prev_hash,
    hash: r.hash,
    ...(commit ? { commit: true } : {})
  })}\n`

/** The keys a line may have: a stored record's, and the batch's commit mark. */
const lineKeys = new Set([
  "seq",
  "id",
  "type",
  "created_at",
  "organization_id",
  "actor",
  "targets",
  "ip_address",
  "user_agent",
  "event",
  "schema_mismatch",
  "prev_hash",
  "hash",
  "commit"
])

/**
 * A line that is not a record (`where` names it: "line 51 of 2026-11-24.jsonl") is kept
 * as an entry that says so, for verify to report; queries skip it. A key outside the
 * record is not covered by the hash: a line with one was tampered with, not written here.
 */
const fromLine = (line: string, where: string): Chain.ReadBack => {
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch {
    return notARecord(`${where} is not a record (not JSON)`)
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return notARecord(`${where} is not a record (not a JSON object)`)
  }
  const { seq, id } = parsed as { seq?: unknown; id?: unknown }
  if (typeof seq !== "number" || typeof id !== "string") {
    return notARecord(`${where} is not a record (it has no numeric seq and string id)`)
  }
  const extra = Object.keys(parsed).filter((k) => !lineKeys.has(k))
  if (extra.length > 0) {
    return notARecord(
      `${where} (record #${seq}, event ${id}) was modified: it has key(s) outside the record, which the hash does not cover: ${extra.map((k) => JSON.stringify(k)).join(", ")}`
    )
  }
  const { commit, ...record } = parsed as StoredRecord & { commit?: unknown }
  if (commit !== undefined && commit !== true) {
    return notARecord(`${where} (record #${seq}, event ${id}) has a commit mark that is not true`)
  }
  return record
}

const notARecord = (message: string): Chain.ReadBack => ({
  notARecord: message,
  seq: Number.NaN,
  id: "",
  type: "",
  created_at: "",
  organization_id: null,
  actor: null,
  targets: [],
  ip_address: null,
  user_agent: null,
  event: null,
  prev_hash: "",
  hash: ""
})

/** The day files in chain order (oldest first). */
const listDays = (
  directory: string
): ReadonlyArray<{ readonly day: string; readonly file: string; readonly gz: boolean }> =>
  fs
    .readdirSync(directory)
    .flatMap((name) => {
      const m = dayFile.exec(name)
      return m === null
        ? []
        : [{ day: m[1]!, file: path.join(directory, name), gz: m[2] !== undefined }]
    })
    .sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0))

async function* readRecords(directory: string): AsyncGenerator<Chain.ReadBack> {
  const days = listDays(directory)
  for (const { day, file, gz } of days) {
    // A day being gzipped (or whose gzip a crash interrupted) is read from the finished .gz.
    if (!gz && days.some((other) => other.day === day && other.gz)) continue
    yield* readFile(file)
  }
}

/**
 * The records up to the head's record (`head.json` is written after each batch, so a
 * writer appending meanwhile adds records after it); those after it are counted in
 * `newer`, not yielded. When the head's record never comes, every record is yielded
 * (and verify reports the head's mismatch).
 */
async function* upToHead(
  records: AsyncIterable<Chain.ReadBack>,
  anchor: Chain.Anchor,
  head: Chain.Head,
  newer: { count: number }
): AsyncGenerator<Chain.ReadBack> {
  let reached = head.hash === anchor.hash
  for await (const r of records) {
    if (reached) {
      newer.count += 1
      continue
    }
    yield r
    reached = r.seq === head.seq && r.hash === head.hash
  }
}

/**
 * Cuts off lines after the last committed batch of the newest plain file (what a
 * crash mid-batch leaves), and finishes a gzip or a prune a crash interrupted.
 */
const recover = (directory: string, anchor: Chain.Anchor): number => {
  for (const name of fs.readdirSync(directory)) {
    if (name.endsWith(".tmp")) fs.rmSync(path.join(directory, name))
  }
  for (const { day, file, gz } of listDays(directory)) {
    // The gzip was complete (written, synced, renamed) before the plain file goes.
    if (!gz && fs.existsSync(path.join(directory, `${day}.jsonl.gz`))) fs.rmSync(file)
  }
  const days = listDays(directory)
  const last = days.at(-1)
  let cut = 0
  if (last !== undefined && !last.gz) {
    const bytes = fs.readFileSync(last.file)
    let keep = 0
    let start = 0
    while (start < bytes.length) {
      const end = bytes.indexOf(10, start)
      if (end === -1) break
      const line = bytes.subarray(start, end).toString("utf8")
      if (line.endsWith(',"commit":true}')) keep = end + 1
      start = end + 1
    }
    if (keep < bytes.length) {
      cut = bytes.length - keep
      fs.truncateSync(last.file, keep)
      const fd = fs.openSync(last.file, "r+")
      fs.fsyncSync(fd)
      fs.closeSync(fd)
    }
  }
  // A prune that moved the anchor but did not get to delete its files.
  for (const { file } of days) {
    const lastSeq = lastSeqOf(file)
    if (lastSeq !== undefined && lastSeq <= anchor.seq) fs.rmSync(file)
    else break
  }
  return cut
}

const lastSeqOf = (file: string): number | undefined => {
  const text = file.endsWith(".gz")
    ? zlib.gunzipSync(fs.readFileSync(file)).toString("utf8")
    : fs.readFileSync(file, "utf8")
  const lines = text.trimEnd().split("\n")
  const last = lines.at(-1)
  if (last === undefined || last === "") return undefined
  return fromLine(last, `the last line of ${path.basename(file)}`).seq
}

const gzipFile = async (file: string): Promise<void> => {
  const target = `${file}.gz`
  const tmp = `${target}.tmp`
  await pipeline(fs.createReadStream(file), zlib.createGzip(), fs.createWriteStream(tmp))
  const fd = fs.openSync(tmp, "r")
  fs.fsyncSync(fd)
  fs.closeSync(fd)
  fs.renameSync(tmp, target)
  syncDir(path.dirname(file))
  fs.rmSync(file)
}

/** Opens (creating and repairing when needed, unless `readOnly`) the store in `directory`. */
export const make = (
  options: Options
): Effect.Effect<Shape, StoreError | SchemaTooNew, Scope.Scope> =>
  Effect.gen(function* () {
    const directory = options.directory
    const where = directory
    const metaFile = path.join(directory, "meta.json")
    const headFile = path.join(directory, "head.json")
    const fail =
      (what: string) =>
      (cause: unknown): StoreError =>
        storeFailure({ store: "JSONL", location: where, operation: what, cause })

    const lock = yield* Semaphore.make(1)

    /**
     * Where the committed records end, for queries: the writer's own head (lines after
     * it are a batch that failed and is being rolled back), or for a reader `head.json`
     * (lines after it are a batch still being written). Undefined: read every line.
     */
    let committedHead: () => { anchor: Chain.Anchor; head: Chain.Head } | undefined = () => {
      const meta = readJson<Meta>(metaFile)
      const head = readJson<Chain.Head>(headFile)
      return meta === undefined || head === undefined ? undefined : { anchor: meta.anchor, head }
    }

    const query: Shape["query"] = (q) =>
      Effect.tryPromise({
        try: async () => {
          const types = q.types ?? []
          const since = q.since?.toISOString()
          const until = q.until?.toISOString()
          const found: Array<StoredRecord> = []
          const committed = committedHead()
          const records =
            committed === undefined
              ? readRecords(directory)
              : upToHead(readRecords(directory), committed.anchor, committed.head, { count: 0 })
          for await (const r of records) {
            if (r.notARecord !== undefined) continue
            if (types.length > 0 && !types.some((t) => EventPattern.matchesName(t, r.type)))
              continue
            if (q.org !== undefined && r.organization_id !== q.org) continue
            if (q.actor !== undefined && r.actor?.id !== q.actor && r.actor?.name !== q.actor)
              continue
            if (since !== undefined && r.created_at < since) continue
            if (until !== undefined && r.created_at >= until) continue
            if (q.mismatched === true && r.schema_mismatch === undefined) continue
            const before = q.before
            if (
              before !== undefined &&
              (r.created_at > before.createdAt ||
                (r.created_at === before.createdAt && r.seq >= before.seq))
            )
              continue
            found.push(r)
          }
          found.sort((a, b) =>
            a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : b.seq - a.seq
          )
          return found.slice(0, q.limit ?? defaultLimit)
        },
        catch: fail("querying")
      })

    // meta.json (the anchor) and head.json are read from the files, as a later process would.
    const verify = Semaphore.withPermit(lock)(
      Effect.tryPromise({
        try: async (): Promise<Chain.Report> => {
          const meta = readJson<Meta>(metaFile)
          if (meta === undefined) {
            return Chain.missing(
              `${metaFile} is missing: it holds the chain's anchor (was it deleted, or is this not an audit log folder?)`
            )
          }
          // Read before the records: what a writer appends meanwhile comes after it.
          const head = readJson<Chain.Head>(headFile)
          if (head === undefined) {
            return Chain.missing(
              `${headFile} is missing: it says which record is the newest, so a cut-off tail cannot be told`,
              meta.anchor
            )
          }
          const newer = { count: 0 }
          const report = await Chain.walk({
            anchor: meta.anchor,
            head,
            records: upToHead(readRecords(directory), meta.anchor, head, newer),
            again: () => readRecords(directory)
          })
          return newer.count > 0 ? { ...report, newer: newer.count } : report
        },
        catch: fail("verifying")
      })
    )

    if (options.readOnly === true) {
      const refused = yield* Effect.try({
        try: () => {
          const meta = readJson<Meta>(metaFile)
          // A missing meta.json is for verify to report; a folder that is not one is refused.
          if (meta === undefined) return undefined
          if (meta.format !== format) throw new Error(`${metaFile} is not a ${format} meta file`)
          if (meta.schema_version > schemaVersion) {
            return new SchemaTooNew({ where, found: meta.schema_version, supported: schemaVersion })
          }
          return meta.schema_version < schemaVersion
            ? schemaTooOld(where, meta.schema_version)
            : undefined
        },
        catch: fail("opening")
      })
      if (refused !== undefined) return yield* refused
      const refuseWrite = Effect.fail(openedReadOnly("JSONL", where))
      const head = Effect.try({ try: () => committedHead(), catch: fail("reading the head") })
      return { where, append: () => refuseWrite, query, verify, prune: () => refuseWrite, head }
    }

    const opened = yield* Effect.tryPromise({
      try: async () => {
        fs.mkdirSync(directory, { recursive: true })
        let meta = readJson<Meta>(metaFile)
        if (meta !== undefined && meta.format !== format) {
          throw new Error(`${metaFile} is not a ${format} meta file`)
        }
        if (meta !== undefined && meta.schema_version > schemaVersion) {
          return new SchemaTooNew({ where, found: meta.schema_version, supported: schemaVersion })
        }
        if (meta === undefined || meta.schema_version < schemaVersion) {
          // Version 2 added `schema_mismatch` to the records that have one: lines
          // written before lack it and hash as they did, so there is nothing to
          // rewrite, only to stamp. (An older reader would not hash the new key:
          // the stamp keeps it away.)
          meta = {
            format,
            schema_version: schemaVersion,
            anchor: meta?.anchor ?? Chain.genesisAnchor
          }
          writeAtomic(metaFile, JSON.stringify(meta))
        }
        recover(directory, meta.anchor)
        // One pass to learn the ids already kept and the chain's end.
        const ids = new Set<string>()
        let end = { seq: meta.anchor.seq, hash: meta.anchor.hash }
        let count = 0
        for await (const r of readRecords(directory)) {
          if (r.notARecord !== undefined) continue
          ids.add(r.id)
          count += 1
          end = { seq: r.seq, hash: r.hash }
        }
        const head = readJson<Chain.Head>(headFile)
        // A crash between a batch's fsync and head.json leaves head.json behind: catch it up.
        // (A head ahead of the files is not touched: verify must report what went missing.)
        if (head === undefined || head.seq < end.seq) {
          writeAtomic(headFile, JSON.stringify({ seq: end.seq, hash: end.hash, count }))
        }
        return { meta, ids, end, count }
      },
      catch: fail("opening")
    })
    if (opened instanceof SchemaTooNew) return yield* opened
    let meta = opened.meta
    const ids = opened.ids
    let end = opened.end
    let count = opened.count

    const closeOldDays = Effect.tryPromise({
      try: async () => {
        if (options.gzip !== true) return
        const now = today()
        for (const { day, file, gz } of listDays(directory)) {
          if (!gz && day < now) await gzipFile(file)
        }
      },
      catch: fail("gzipping closed days")
    })
    yield* closeOldDays

    const files = options.files ?? nodeFiles
    // The writer's queries stop at what it committed.
    committedHead = () => ({ anchor: meta.anchor, head: { ...end, count } })
    /**
     * A day file holding lines of a batch that failed and whose rollback failed too:
     * the length to cut it back to before anything else is written.
     */
    let uncommitted: { readonly file: string; readonly size: number } | undefined

    const cutBack = (file: string, size: number): void => {
      const fd = files.openSync(file, "r+")
      try {
        files.ftruncateSync(fd, size)
        files.fsyncSync(fd)
      } finally {
        files.closeSync(fd)
      }
    }

    /**
     * Writes a batch's lines and then `head.json`; the rename of `head.json` is the commit.
     * Anything failing before it cuts the file back to its committed length (or, when
     * that fails too, leaves the cut to the next append, which does it before writing):
     * a retry then appends the batch once, not a second time after the first.
     */
    const writeBatch = (file: string, lines: Buffer, head: Chain.Head): void => {
      if (uncommitted !== undefined) {
        cutBack(uncommitted.file, uncommitted.size)
        uncommitted = undefined
      }
      const isNew = !fs.existsSync(file)
      const fd = files.openSync(file, "a")
      let size: number
      try {
        size = fs.fstatSync(fd).size
      } catch (e) {
        files.closeSync(fd)
        throw e
      }
      try {
        writeAll(files, fd, lines, file)
        files.fsyncSync(fd)
        if (isNew) syncDir(directory)
        replaceFile(files, headFile, JSON.stringify(head))
      } catch (e) {
        try {
          files.ftruncateSync(fd, size)
          files.fsyncSync(fd)
        } catch {
          uncommitted = { file, size }
        }
        throw e
      } finally {
        try {
          files.closeSync(fd)
        } catch {
          // Closing cannot undo a write; what was committed stays committed.
        }
      }
      // Committed. A lost fsync of the folder can only leave head.json behind, which the
      // next open catches up from the (fsynced) lines.
      try {
        syncDir(directory)
      } catch {
        // As above.
      }
    }

    const append = (records: ReadonlyArray<AuditRecord>) =>
      Semaphore.withPermit(lock)(
        Effect.gen(function* () {
          const fresh = dedupe(records).filter((r) => !ids.has(r.id))
          if (fresh.length === 0) return { inserted: 0, duplicates: records.length }
          const linked = Chain.link(end, fresh)
          const lines = Buffer.from(
            linked.map((r, i) => toLine(r, i === linked.length - 1)).join(""),
            "utf8"
          )
          const file = path.join(directory, `${today()}.jsonl`)
          if (!fs.existsSync(file)) yield* closeOldDays
          const last = linked.at(-1)!
          const head = { seq: last.seq, hash: last.hash, count: count + linked.length }
          yield* Effect.try({
            try: () => writeBatch(file, lines, head),
            catch: fail("appending a batch")
          })
          // In step with the files only now that the batch is committed.
          for (const r of linked) ids.add(r.id)
          end = { seq: last.seq, hash: last.hash }
          count = head.count
          return { inserted: linked.length, duplicates: records.length - linked.length }
        })
      )

    // Retention removes whole day files: the oldest ones whose records are all older than the cutoff.
    const prune = (before: Date, options: PruneOptions = {}) =>
      Semaphore.withPermit(lock)(
        Effect.tryPromise({
          try: async () => {
            const cutoff = before.toISOString()
            const doomed: Array<string> = []
            let anchor = meta.anchor
            let deleted = 0
            for (const { file, day } of listDays(directory)) {
              if (day === today()) break
              let all = true
              let last: Chain.Anchor | undefined
              let n = 0
              for await (const r of readFile(file)) {
                if (
                  r.created_at >= cutoff ||
                  (options.upTo !== undefined && r.seq > options.upTo)
                ) {
                  all = false
                  break
                }
                last = { seq: r.seq, hash: r.hash }
                n += 1
              }
              if (!all) break
              doomed.push(file)
              if (last !== undefined) anchor = last
              deleted += n
            }
            if (doomed.length === 0 || options.plan === true) return { deleted, anchor }
            // The anchor goes first: a crash after it is finished by `recover` on the next open.
            meta = { ...meta, anchor }
            writeAtomic(metaFile, JSON.stringify(meta))
            const head = readJson<Chain.Head>(headFile)
            if (head !== undefined)
              writeAtomic(headFile, JSON.stringify({ ...head, count: head.count - deleted }))
            count -= deleted
            for (const file of doomed) fs.rmSync(file)
            syncDir(directory)
            return { deleted, anchor }
          },
          catch: fail("pruning")
        })
      )

    const head = Effect.sync(() => committedHead())
    return { where, append, query, verify, prune, head } satisfies Shape
  })

async function* readFile(file: string): AsyncGenerator<Chain.ReadBack> {
  const input = fs.createReadStream(file)
  const lines = readline.createInterface({
    input: file.endsWith(".gz") ? input.pipe(zlib.createGunzip()) : input,
    crlfDelay: Number.POSITIVE_INFINITY
  })
  let n = 0
  for await (const line of lines) {
    n += 1
    if (line !== "") yield fromLine(line, `line ${n} of ${path.basename(file)}`)
  }
}

/** The `Store` service over a folder of JSONL files. */
export const layer = (options: Options): Layer.Layer<Store, StoreError | SchemaTooNew> =>
  Layer.effect(Store, make(options))
