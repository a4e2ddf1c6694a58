/**
 * Another process holding the SQLite audit log's write lock (`BEGIN IMMEDIATE`) for
 * seconds: the store waits on its writer thread, so this thread's event loop keeps
 * ticking (a heartbeat timer measures it); a lock held past the busy timeout is a
 * logged, retried failure, at start-up (migrating) as while delivering; afterwards
 * every event is in the store exactly once.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Record from "../src/Record.ts"
import * as SqliteStore from "../src/SqliteStore.ts"
import type { Shape, StoreError } from "../src/Store.ts"
import { notExactlyOnce } from "./faults.ts"
import { events } from "./fixtures.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "audit-lock-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

/** A process that takes the write lock and holds it until told to let go. */
const holdLock = (file: string) =>
  Effect.promise(
    () =>
      new Promise<{ child: ChildProcess; release: () => Promise<void> }>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [
            "-e",
            `const { DatabaseSync } = require("node:sqlite")
             const db = new DatabaseSync(process.argv[1])
             db.exec("BEGIN IMMEDIATE")
             console.log("locked")
             process.stdin.once("data", () => { db.exec("COMMIT"); db.close(); process.exit(0) })`,
            file
          ],
          { stdio: ["pipe", "pipe", "inherit"] }
        )
        child.stdout!.once("data", (chunk) =>
          String(chunk).includes("locked")
            ? resolve({
                child,
                release: () =>
                  new Promise<void>((done) => {
                    child.once("exit", () => done())
                    child.stdin!.write("release\n")
                  })
              })
            : reject(new Error(`lock holder said ${chunk}`))
        )
        child.once("error", reject)
      })
  )

/** The longest time between two ticks of a 10 ms timer on this thread, while it runs. */
const heartbeat = () => {
  let last = performance.now()
  let maxGap = 0
  let ticks = 0
  const timer = setInterval(() => {
    const now = performance.now()
    maxGap = Math.max(maxGap, now - last)
    last = now
    ticks += 1
  }, 10)
  return {
    stop: () => {
      clearInterval(timer)
      return { maxGap, ticks }
    }
  }
}

const batches = (from: number, n: number, size: number) =>
  Array.from({ length: n }, (_, i) => events(size, from + i * size).map(Record.fromEvent))

/** Every id in the file, counted (duplicates would show: the count is per row). */
const idCounts = (file: string): Map<string, number> => {
  const db = new DatabaseSync(file, { readOnly: true })
  try {
    const counts = new Map<string, number>()
    for (const row of db.prepare("SELECT id FROM audit_records").all()) {
      const id = row.id as string
      counts.set(id, (counts.get(id) ?? 0) + 1)
    }
    return counts
  } finally {
    db.close()
  }
}

const capture = () => {
  const lines: Array<string> = []
  return {
    lines,
    layer: Logger.layer([
      Logger.make(({ logLevel, message }) => {
        lines.push(`${logLevel} ${[message].flat().join(" ")}`)
      })
    ])
  }
}

describe("a held SQLite write lock", () => {
  it.live(
    "while delivering: a lock past the busy timeout is a retried, typed failure; the event loop keeps ticking; each event once",
    () =>
      Effect.gen(function* () {
        const file = path.join(dir, "delivering.db")
        const store = yield* SqliteStore.make({ path: file, busyTimeoutMs: 2500 })
        const all = batches(1, 5, 100)
        yield* store.append(all[0]!)
        const lock = yield* holdLock(file)
        const beat = heartbeat()
        // Reads go on meanwhile (the WAL lets them), on this thread, without waiting.
        expect((yield* store.query({ limit: 1000 })).length).toBe(100)
        expect((yield* store.head)?.head.seq).toBe(100)
        // Retention waits its turn on the writer thread too.
        const pruning = yield* Effect.forkChild(Effect.exit(store.prune(new Date(0))))
        const failures: Array<StoreError> = []
        for (const batch of all.slice(1)) {
          while (true) {
            const failure = yield* store.append(batch).pipe(
              Effect.as(undefined),
              Effect.catch((e) => Effect.succeed(e))
            )
            if (failure === undefined) break
            failures.push(failure)
            if (failures.length >= 2 && lock.child.exitCode === null) {
              yield* Effect.promise(() => lock.release())
            }
          }
        }
        const { maxGap, ticks } = beat.stop()
        const pruned = yield* Fiber.join(pruning)
        expect(failures.length).toBeGreaterThanOrEqual(2)
        for (const f of failures) {
          expect(f.locked).toBe(true)
          expect(f.store).toBe("SQLite")
          expect(f.operation).toBe("appending a batch")
          expect(f.message).toContain(
            `SQLite audit log ${file}: appending a batch failed: another connection held the database's lock longer than the busy timeout`
          )
        }
        if (Exit.isFailure(pruned)) expect(String(pruned.cause)).toContain("busy timeout")
        // The lock was held for at least two busy timeouts (5 s): a wait on this thread
        // would have stopped the timer that long.
        expect(ticks).toBeGreaterThan(10)
        expect(maxGap).toBeLessThan(2000)
        expect(
          notExactlyOnce(
            idCounts(file),
            all.flat().map((r) => r.id)
          )
        ).toEqual([])
        expect((yield* store.verify).problem).toBeNull()
      }),
    120_000
  )

  it.live(
    "at start-up: migrating waits, logging each retry, without blocking the event loop; then every event once",
    () =>
      Effect.gen(function* () {
        const file = path.join(dir, "start-up.db")
        const all = batches(1, 3, 100)
        yield* Effect.scoped(
          Effect.gen(function* () {
            const store = yield* SqliteStore.make({ path: file })
            yield* store.append(all[0]!)
          })
        )
        const lock = yield* holdLock(file)
        const beat = heartbeat()
        const logs = capture()
        const starting = yield* Effect.forkChild(
          Effect.scoped(
            Effect.gen(function* () {
              const store = yield* SqliteStore.make({ path: file, busyTimeoutMs: 2500 })
              for (const batch of all.slice(1)) yield* store.append(batch)
              return (yield* store.verify).problem
            })
          ).pipe(Effect.provide(logs.layer))
        )
        // Wait for two retries to be logged (the lock outlives two busy timeouts).
        for (
          let i = 0;
          i < 6000 && logs.lines.filter((l) => l.includes("trying again")).length < 2;
          i++
        ) {
          yield* Effect.sleep("10 millis")
        }
        expect(logs.lines.filter((l) => l.includes("trying again")).length).toBeGreaterThanOrEqual(
          2
        )
        expect(logs.lines[0]).toContain(
          `Warn SQLite audit log ${file}: migrating failed: another connection held the database's lock longer than the busy timeout`
        )
        yield* Effect.promise(() => lock.release())
        const problem = yield* Fiber.join(starting)
        const { maxGap, ticks } = beat.stop()
        expect(problem).toBeNull()
        expect(ticks).toBeGreaterThan(10)
        expect(maxGap).toBeLessThan(2000)
        expect(
          notExactlyOnce(
            idCounts(file),
            all.flat().map((r) => r.id)
          )
        ).toEqual([])
      }),
    120_000
  )
})
