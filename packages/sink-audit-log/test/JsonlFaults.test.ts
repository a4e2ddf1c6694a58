/**
 * The JSONL store under faults: a folder made read-only for a while, a full disk, and
 * each step of an append failing (short write, fsync, head update, rollback). After
 * recovery every event id is in the files exactly once (counted line by line) and
 * verify holds.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as JsonlStore from "../src/JsonlStore.ts"
import * as Record from "../src/Record.ts"
import type { Shape } from "../src/Store.ts"
import { faultyFiles, idCountsInJsonl, notExactlyOnce, tmpfs } from "./faults.ts"
import { events } from "./fixtures.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "audit-jsonl-faults-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const batches = (n: number, size: number) =>
  Array.from({ length: n }, (_, i) => events(size, 1 + i * size).map(Record.fromEvent))

/**
 * Delivers each batch as the runner does: retried until the store takes it. `fault`
 * runs before each attempt (batch index, failures so far) to start or end a fault.
 */
const deliver = (
  store: Shape,
  all: ReadonlyArray<ReadonlyArray<Record.AuditRecord>>,
  fault: (batch: number, failures: ReadonlyArray<string>) => void
) =>
  Effect.gen(function* () {
    const failures: Array<string> = []
    for (const [i, batch] of all.entries()) {
      for (let attempt = 0; ; attempt++) {
        if (attempt > 200) throw new Error(`batch ${i} never went through: ${failures.at(-1)}`)
        fault(i, failures)
        const exit = yield* Effect.exit(store.append(batch))
        if (Exit.isSuccess(exit)) break
        failures.push(String(Exit.isFailure(exit) ? exit.cause : ""))
      }
    }
    return failures
  })

const expectExactlyOnce = (
  directory: string,
  all: ReadonlyArray<ReadonlyArray<Record.AuditRecord>>
) =>
  Effect.gen(function* () {
    const ids = all.flat().map((r) => r.id)
    expect(notExactlyOnce(idCountsInJsonl(directory), ids)).toEqual([])
    const reopened = yield* JsonlStore.make({ directory })
    const report = yield* reopened.verify
    expect(report.problem).toBeNull()
    expect(report.records).toBe(ids.length)
    expect((yield* reopened.query({ limit: 1_000_000 })).length).toBe(ids.length)
    expect(yield* reopened.append(all.flat())).toEqual({ inserted: 0, duplicates: ids.length })
  })

describe("JSONL store under faults", () => {
  it.live("a folder made read-only for a while: each batch once, verify OK", () =>
    Effect.gen(function* () {
      // As root, permissions do not stop writes: a tmpfs remounted read-only does.
      const mount = tmpfs(root, "64m")
      const directory = path.join(mount?.dir ?? root, "read-only")
      try {
        const store = yield* JsonlStore.make({ directory })
        const all = batches(12, 100)
        let readOnly = false
        const setReadOnly = (on: boolean) => {
          readOnly = on
          if (mount !== undefined) mount.remount(on ? "ro" : "rw")
          else fs.chmodSync(directory, on ? 0o555 : 0o755)
        }
        const failures = yield* deliver(store, all, (batch, failures) => {
          if (batch === 4 && failures.length === 0 && !readOnly) setReadOnly(true)
          if (readOnly && failures.length >= 3) setReadOnly(false)
        })
        expect(failures.length).toBe(3)
        for (const f of failures) {
          expect(f).toContain(`JSONL audit log ${directory}: appending a batch failed`)
          expect(f).toMatch(/EROFS|EACCES/)
        }
        yield* expectExactlyOnce(directory, all)
      } finally {
        mount?.unmount()
      }
    })
  )

  it.live("a full disk, then room again: each batch once, no torn line, verify OK", () =>
    Effect.gen(function* () {
      const mount = tmpfs(root, "1m")
      const stand = faultyFiles()
      const directory = path.join(mount?.dir ?? root, "full")
      try {
        const store = yield* JsonlStore.make({
          directory,
          ...(mount === undefined ? { files: stand.files } : {})
        })
        // Without a tmpfs: a disk with room for about 1 MiB of lines.
        if (mount === undefined) stand.setBudget(1024 * 1024)
        const all = batches(20, 100)
        let full = false
        const failures = yield* deliver(store, all, (_, failures) => {
          if (failures.length > 0) full = true
          if (full && failures.length === 3) {
            if (mount !== undefined) mount.remount("size=64m")
            else stand.setBudget(Number.POSITIVE_INFINITY)
          }
        })
        expect(failures.length).toBe(3)
        for (const f of failures) expect(f).toContain("ENOSPC")
        yield* expectExactlyOnce(directory, all)
      } finally {
        mount?.unmount()
      }
    })
  )

  it.live(
    "out of inodes (head.json cannot be replaced after the lines are written): each batch once, verify OK",
    () =>
      Effect.gen(function* () {
        const mount = tmpfs(root, "64m,nr_inodes=64")
        if (mount === undefined) return // The stand-in tests below fail the same step.
        const directory = path.join(mount.dir, "inodes")
        try {
          const store = yield* JsonlStore.make({ directory })
          const all = batches(8, 100)
          yield* store.append(all[0]!)
          // Every inode taken: the day file can grow, but head.json's replacement cannot be made.
          const fillers: Array<string> = []
          try {
            for (let i = 0; i < 1000; i++) {
              const filler = path.join(mount.dir, `filler-${i}`)
              fs.writeFileSync(filler, "")
              fillers.push(filler)
            }
          } catch (e) {
            expect((e as NodeJS.ErrnoException).code).toBe("ENOSPC")
          }
          const failures = yield* deliver(store, all.slice(1), (_, failures) => {
            if (failures.length === 3) for (const f of fillers.splice(0)) fs.rmSync(f)
          })
          expect(failures.length).toBe(3)
          for (const f of failures) expect(f).toContain("ENOSPC")
          yield* expectExactlyOnce(directory, all)
        } finally {
          mount.unmount()
        }
      })
  )

  const steps = [
    ["a short write, then ENOSPC", ["short-write"]],
    ["fsync fails (EIO)", ["fsync"]],
    ["head.json cannot be replaced (EACCES, a read-only folder)", ["rename"]],
    ["head.json cannot be replaced, and cutting the lines back fails too", ["rename", "truncate"]]
  ] as const
  for (const [name, ops] of steps) {
    it.live(`${name}: the batch is appended exactly once when retried`, () =>
      Effect.gen(function* () {
        const stand = faultyFiles()
        const directory = path.join(root, `step-${ops.join("-")}`)
        const store = yield* JsonlStore.make({ directory, files: stand.files })
        const all = batches(6, 50)
        let armed = false
        const failures = yield* deliver(store, all, (batch) => {
          if (batch === 2 && !armed) {
            armed = true
            for (const op of ops) stand.fail(op, op === "rename" ? "EACCES" : "EIO")
          }
        })
        expect(failures.length).toBe(1)
        expect(stand.pending).toBe(0)
        yield* expectExactlyOnce(directory, all)
      })
    )
  }

  it.live(
    "a failed head update whose rollback failed, then a crash: the reopened store keeps the batch once",
    () =>
      Effect.gen(function* () {
        const stand = faultyFiles()
        const directory = path.join(root, "crash-after-failed-rollback")
        const first = yield* JsonlStore.make({ directory, files: stand.files })
        const all = batches(3, 40)
        yield* first.append(all[0]!)
        stand.fail("rename", "EACCES")
        stand.fail("truncate", "EIO")
        yield* Effect.flip(first.append(all[1]!))
        // The writer's own query shows only what it committed.
        expect((yield* first.query({ limit: 1000 })).length).toBe(40)
        // The process dies here; a new one adopts the fsynced, marked batch.
        const second = yield* JsonlStore.make({ directory })
        expect(yield* second.append(all[1]!)).toEqual({ inserted: 0, duplicates: 40 })
        yield* second.append(all[2]!)
        yield* expectExactlyOnce(directory, all)
      })
  )
})
