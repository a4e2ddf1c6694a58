/**
 * The SQLite store on a full disk (a small tmpfs, mounted as root; skipped where this
 * process may not mount one). Appends fail with a store error naming the file, nothing
 * of a failed batch is kept, and once there is room again every event id is in the
 * store exactly once (counted row by row) and verify holds.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Record from "../src/Record.ts"
import * as SqliteStore from "../src/SqliteStore.ts"
import { notExactlyOnce, tmpfs } from "./faults.ts"
import { events } from "./fixtures.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "audit-sqlite-faults-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

/** Whether this process may mount a tmpfs (root, and allowed by the container). */
const canMount = (() => {
  const probe = tmpfs(root, "64k")
  probe?.unmount()
  return probe !== undefined
})()

/** Fills the file system of `dir` until a write fails with ENOSPC; returns the filler. */
const fill = (dir: string): string => {
  const file = path.join(dir, "filler")
  const fd = fs.openSync(file, "w")
  const chunk = Buffer.alloc(4096, 1)
  try {
    while (true) fs.writeSync(fd, chunk)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e
  } finally {
    fs.closeSync(fd)
  }
  return file
}

/** Each event id's row count, read straight from the file (duplicates counted). */
const idCounts = (file: string): Map<string, number> => {
  const db = new DatabaseSync(file, { readOnly: true })
  try {
    const counts = new Map<string, number>()
    for (const row of db.prepare("SELECT id FROM audit_records ORDER BY seq").iterate()) {
      const id = (row as { id: string }).id
      counts.set(id, (counts.get(id) ?? 0) + 1)
    }
    return counts
  } finally {
    db.close()
  }
}

/** Three batches, a full disk (three failed appends), room again, nine more batches. */
const run = (mount: NonNullable<ReturnType<typeof tmpfs>>, file: string) =>
  Effect.gen(function* () {
    const all = Array.from({ length: 12 }, (_, i) => events(100, 1 + i * 100).map(Record.fromEvent))
    // Closed (its writer thread ended) before the tmpfs is unmounted.
    const store = yield* SqliteStore.make({ path: file })
    for (const batch of all.slice(0, 3)) yield* store.append(batch)
    const filler = fill(mount.dir)

    // Appends fail while the disk is full; what is kept stays exactly the first 3 batches.
    const failures: Array<string> = []
    for (let attempt = 0; attempt < 3; attempt++) {
      const exit = yield* Effect.exit(store.append(all[3]!))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) failures.push(String(exit.cause))
    }
    for (const f of failures) {
      expect(f).toContain(file)
      expect(f).toContain("appending")
      expect(f).toMatch(/full/)
    }
    const during = yield* store.verify
    expect(during.problem).toBeNull()
    expect(during.records).toBe(300)
    expect(
      notExactlyOnce(
        idCounts(file),
        all
          .slice(0, 3)
          .flat()
          .map((r) => r.id)
      )
    ).toEqual([])

    // Room again (the filler gone, and room for the WAL of nine more batches): the
    // failed batch and the rest go through, each once.
    fs.rmSync(filler)
    mount.remount("size=64m")
    for (const batch of all.slice(3)) yield* store.append(batch)
    // A batch delivered again (a retry after an unseen success) is skipped.
    expect(yield* store.append(all[3]!)).toEqual({ inserted: 0, duplicates: 100 })
    const ids = all.flat().map((r) => r.id)
    expect(notExactlyOnce(idCounts(file), ids)).toEqual([])
    const after = yield* store.verify
    expect(after.problem).toBeNull()
    expect(after.records).toBe(ids.length)
  })

describe("SQLite store under faults", () => {
  it.skipIf(!canMount)(
    "a full disk, then room again: a clear error naming the file, no half batch, each id once, verify OK",
    () =>
      Effect.gen(function* () {
        const mount = tmpfs(root, "2m")!
        const file = path.join(mount.dir, "audit.db")
        try {
          yield* Effect.scoped(run(mount, file))
        } finally {
          mount.unmount()
        }
      }).pipe(Effect.runPromise),
    60_000
  )
})
