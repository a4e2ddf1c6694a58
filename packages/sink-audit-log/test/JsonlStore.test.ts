import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as JsonlStore from "../src/JsonlStore.ts"
import * as Record from "../src/Record.ts"
import { events, start } from "./fixtures.ts"
import { type Opened, storeSuite } from "./storeSuite.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "audit-jsonl-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

/**
 * The plain day files, oldest first. Tests look for the files the store wrote rather
 * than work out today's name: a test running across UTC midnight would guess wrong.
 */
const dayFiles = (directory: string): Array<string> =>
  fs
    .readdirSync(directory)
    .filter((n) => /^\d{4}-\d{2}-\d{2}\.jsonl$/.test(n))
    .sort()
    .map((n) => path.join(directory, n))

/** The newest plain day file (the one the store appends to). */
const dayFile = (directory: string): string => {
  const file = dayFiles(directory).at(-1)
  if (file === undefined) throw new Error(`no day file in ${directory}`)
  return file
}

/**
 * Edits the lines of the plain day files as a text editor would (all of them as one
 * list, written back to the newest file: a batch written just after UTC midnight
 * lands in a second file).
 */
const editLines = (directory: string, f: (lines: Array<string>) => Array<string>) =>
  Promise.resolve().then(() => {
    const files = dayFiles(directory)
    const lines = files
      .flatMap((file) => fs.readFileSync(file, "utf8").split("\n"))
      .filter((l) => l !== "")
    for (const file of files.slice(0, -1)) fs.rmSync(file)
    fs.writeFileSync(files.at(-1)!, `${f(lines).join("\n")}\n`)
  })

const indexOf = (lines: ReadonlyArray<string>, seq: number) =>
  lines.findIndex((l) => JSON.parse(l).seq === seq)

let n = 0
const open = (key: string) =>
  Effect.gen(function* () {
    const directory = path.join(root, `${key}-${++n}`)
    const store = yield* JsonlStore.make({ directory })
    const opened: Opened = {
      store,
      reopen: JsonlStore.make({ directory }),
      tamper: {
        modify: (seq) =>
          editLines(directory, (lines) => {
            const i = indexOf(lines, seq)
            lines[i] = JSON.stringify({ ...JSON.parse(lines[i]!), ip_address: "6.6.6.6" })
            return lines
          }),
        remove: (seq) =>
          editLines(directory, (lines) => lines.filter((_, i) => i !== indexOf(lines, seq))),
        insertAfter: (seq, record) =>
          editLines(directory, (lines) => {
            lines.splice(indexOf(lines, seq) + 1, 0, JSON.stringify(record))
            return lines
          }),
        swap: (seq) =>
          editLines(directory, (lines) => {
            const i = indexOf(lines, seq)
            ;[lines[i], lines[i + 1]] = [lines[i + 1]!, lines[i]!]
            return lines
          }),
        setMismatch: (seq, value) =>
          editLines(directory, (lines) => {
            const i = indexOf(lines, seq)
            const { schema_mismatch: _, ...record } = JSON.parse(lines[i]!)
            lines[i] = JSON.stringify(
              value === null ? record : { ...record, schema_mismatch: value }
            )
            return lines
          }),
        // Version 1 records never had a schema_mismatch: only the stamp differs.
        downgrade: () =>
          Promise.resolve().then(() => {
            const file = path.join(directory, "meta.json")
            const meta = JSON.parse(fs.readFileSync(file, "utf8"))
            fs.writeFileSync(file, JSON.stringify({ ...meta, schema_version: 1 }))
          })
      }
    }
    return opened
  })

const records = (count: number, from = 1) => events(count, from).map(Record.fromEvent)

describe("JsonlStore", () => {
  storeSuite(open)

  it.live(
    "writes one line per record to the file of the UTC day, the batch's last line marked",
    () =>
      Effect.gen(function* () {
        const directory = path.join(root, "layout")
        const store = yield* JsonlStore.make({ directory })
        yield* store.append(records(3))
        const lines = fs.readFileSync(dayFile(directory), "utf8").trimEnd().split("\n")
        expect(lines.map((l) => JSON.parse(l).seq)).toEqual([1, 2, 3])
        expect(lines.map((l) => JSON.parse(l).commit)).toEqual([undefined, undefined, true])
        expect(JSON.parse(lines[0]!).event).toEqual(events(1)[0])
      })
  )

  it.live("a crash mid-batch (a torn write) leaves no partial batch after reopening", () =>
    Effect.gen(function* () {
      const directory = path.join(root, "torn")
      const first = yield* JsonlStore.make({ directory })
      yield* first.append(records(4))
      // What a process killed while writing its next batch leaves: whole lines and half a line, no commit.
      const file = dayFile(directory)
      const complete = fs.readFileSync(file, "utf8")
      fs.appendFileSync(
        file,
        `${JSON.stringify({ seq: 5, id: "event_partial" })}\n{"seq":6,"id":"ev`
      )
      const store = yield* JsonlStore.make({ directory })
      expect(fs.readFileSync(file, "utf8")).toBe(complete)
      expect((yield* store.verify).problem).toBeNull()
      expect(yield* store.append(records(3, 4))).toEqual({ inserted: 2, duplicates: 1 })
      const report = yield* store.verify
      expect(report.problem).toBeNull()
      expect(report.records).toBe(6)
    })
  )

  it.live("gzips closed days and still reads, verifies and queries them", () =>
    Effect.gen(function* () {
      const directory = path.join(root, "gzip")
      const first = yield* JsonlStore.make({ directory, gzip: true })
      yield* first.append(records(5))
      // Make today's file yesterday's, as if the day had passed.
      fs.renameSync(dayFile(directory), path.join(directory, "2026-01-01.jsonl"))
      const store = yield* JsonlStore.make({ directory, gzip: true })
      expect(fs.existsSync(path.join(directory, "2026-01-01.jsonl"))).toBe(false)
      const gz = zlib
        .gunzipSync(fs.readFileSync(path.join(directory, "2026-01-01.jsonl.gz")))
        .toString("utf8")
      expect(gz.trimEnd().split("\n")).toHaveLength(5)
      yield* store.append(records(5, 6))
      const report = yield* store.verify
      expect(report.problem).toBeNull()
      expect(report.records).toBe(10)
      expect((yield* store.query({ limit: 100 })).map((r) => r.seq)).toEqual([
        10, 9, 8, 7, 6, 5, 4, 3, 2, 1
      ])
      expect(yield* store.append(records(10))).toEqual({ inserted: 0, duplicates: 10 })
    })
  )

  it.live("retention deletes whole closed days and verify holds from the anchor", () =>
    Effect.gen(function* () {
      const directory = path.join(root, "retention")
      const first = yield* JsonlStore.make({ directory })
      yield* first.append(records(30))
      fs.renameSync(dayFile(directory), path.join(directory, "2026-01-01.jsonl"))
      const store = yield* JsonlStore.make({ directory })
      yield* store.append(records(30, 31))
      // The old day holds records of minutes 1-30; a cutoff at minute 20 keeps it (not all are old).
      expect((yield* store.prune(new Date(start + 20 * 60_000))).deleted).toBe(0)
      const cutoff = new Date(start + 31 * 60_000)
      // A plan says what would go and removes nothing; `upTo` inside the day keeps the day.
      expect(yield* store.prune(cutoff, { plan: true })).toEqual({
        deleted: 30,
        anchor: expect.objectContaining({ seq: 30 })
      })
      expect(fs.existsSync(path.join(directory, "2026-01-01.jsonl"))).toBe(true)
      expect((yield* store.head)!.anchor.seq).toBe(0)
      expect((yield* store.prune(cutoff, { upTo: 29 })).deleted).toBe(0)
      const pruned = yield* store.prune(cutoff, { upTo: 30 })
      expect(pruned.deleted).toBe(30)
      expect(pruned.anchor.seq).toBe(30)
      expect(fs.existsSync(path.join(directory, "2026-01-01.jsonl"))).toBe(false)
      const report = yield* store.verify
      expect(report.problem).toBeNull()
      expect(report.records).toBe(30)
      const again = yield* JsonlStore.make({ directory })
      expect((yield* again.verify).problem).toBeNull()
      expect(yield* again.append(records(1, 60))).toEqual({ inserted: 0, duplicates: 1 })
    })
  )

  it.live(
    "read-only (verify, query): repairs nothing; a missing head or meta file is a finding",
    () =>
      Effect.gen(function* () {
        const directory = path.join(root, "read-only")
        const writer = yield* JsonlStore.make({ directory })
        yield* writer.append(records(3))
        yield* writer.append(records(2, 4))
        // Tampered: head.json gone, and the last batch's commit mark removed.
        const headFile = path.join(directory, "head.json")
        fs.rmSync(headFile)
        yield* Effect.promise(() =>
          editLines(directory, (lines) => [
            ...lines.slice(0, -1),
            lines.at(-1)!.replace(',"commit":true', "")
          ])
        )
        const file = dayFile(directory)
        const before = fs.readFileSync(file, "utf8")
        const reader = yield* JsonlStore.make({ directory, readOnly: true })
        expect((yield* reader.verify).problem).toEqual({
          kind: "deleted",
          seq: null,
          id: null,
          message: `${headFile} is missing: it says which record is the newest, so a cut-off tail cannot be told`
        })
        expect((yield* reader.query({})).length).toBe(5)
        expect((yield* Effect.flip(reader.append(records(1, 6)))).message).toBe(
          `JSONL audit log ${directory}: opened read-only`
        )
        expect(fs.readFileSync(file, "utf8")).toBe(before)
        expect(fs.existsSync(headFile)).toBe(false)
        // An empty folder stays empty.
        const empty = path.join(root, "read-only-empty")
        fs.mkdirSync(empty)
        const report = yield* (yield* JsonlStore.make({ directory: empty, readOnly: true })).verify
        expect(report.problem?.message).toBe(
          `${path.join(empty, "meta.json")} is missing: it holds the chain's anchor (was it deleted, or is this not an audit log folder?)`
        )
        expect(fs.readdirSync(empty)).toEqual([])
      })
  )

  it.live("verify names a line that is not a record by its file and line number", () =>
    Effect.gen(function* () {
      const directory = path.join(root, "not-json")
      const store = yield* JsonlStore.make({ directory })
      yield* store.append(records(5))
      yield* Effect.promise(() =>
        editLines(directory, (lines) => {
          lines[2] = "this is not json"
          return lines
        })
      )
      expect((yield* store.verify).problem).toEqual({
        kind: "modified",
        seq: null,
        id: null,
        message: `line 3 of ${path.basename(dayFile(directory))} is not a record (not JSON)`
      })
      expect((yield* store.query({})).map((r) => r.seq)).toEqual([5, 4, 2, 1])
    })
  )

  it.live(
    "verify while a writer appends: records after the head it read are counted, not flagged",
    () =>
      Effect.gen(function* () {
        const directory = path.join(root, "appending")
        const store = yield* JsonlStore.make({ directory })
        yield* store.append(records(5))
        const headFile = path.join(directory, "head.json")
        const headWhenVerifyBegan = fs.readFileSync(headFile, "utf8")
        yield* store.append(records(3, 6))
        // As verify sees it when it read head.json before this batch: and a next batch half written.
        fs.writeFileSync(headFile, headWhenVerifyBegan)
        fs.appendFileSync(dayFile(directory), '{"seq":9,"id":"ev')
        const report = yield* (yield* JsonlStore.make({ directory, readOnly: true })).verify
        expect(report.problem).toBeNull()
        expect(report.records).toBe(5)
        expect(report.newer).toBe(4)
      })
  )

  it.live(
    "a line with a key outside the record is tampering: verify names it, query skips it",
    () =>
      Effect.gen(function* () {
        const directory = path.join(root, "added-key")
        const store = yield* JsonlStore.make({ directory })
        yield* store.append(records(5))
        // The hash covers the record's fields only: an added key changes no hash.
        yield* Effect.promise(() =>
          editLines(directory, (lines) => {
            lines[2] = JSON.stringify({ ...JSON.parse(lines[2]!), approved_by: "mallory" })
            return lines
          })
        )
        const report = yield* store.verify
        expect(report.problem).toMatchObject({ kind: "modified" })
        expect(report.problem!.message).toBe(
          `line 3 of ${path.basename(dayFile(directory))} (record #3, event event_000003) was modified: it has key(s) outside the record, which the hash does not cover: "approved_by"`
        )
        const reader = yield* JsonlStore.make({ directory, readOnly: true })
        const shown = yield* reader.query({})
        expect(shown.map((r) => r.seq)).toEqual([5, 4, 2, 1])
        expect(shown.every((r) => !("approved_by" in r))).toBe(true)
      })
  )

  it.live("refuses a folder written by a newer schema version", () =>
    Effect.gen(function* () {
      const directory = path.join(root, "newer")
      yield* Effect.scoped(JsonlStore.make({ directory }))
      const meta = JSON.parse(fs.readFileSync(path.join(directory, "meta.json"), "utf8"))
      fs.writeFileSync(
        path.join(directory, "meta.json"),
        JSON.stringify({ ...meta, schema_version: 3 })
      )
      const error = yield* Effect.flip(Effect.scoped(JsonlStore.make({ directory })))
      expect(error._tag).toBe("SchemaTooNew")
      expect(error.message).toContain(
        "has schema version 3, but this version of @workos-relay/sink-audit-log knows versions up to 2"
      )
    })
  )
})
