/**
 * Another process holding the SQLite mirror's write lock (an application in a
 * transaction on the same file) neither blocks this process's event loop nor loses a
 * batch: the batch waits, timers keep firing meanwhile, and it lands once the lock is
 * released; a lock held past `lockWait` fails the batch retryably, and the batch
 * delivered again lands once.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Sink as CoreSink } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import { definition } from "../src/index.ts"
import { deliverTo } from "../src/Sink.ts"
import * as SqliteStore from "../src/SqliteStore.ts"
import { metaKeys } from "../src/Store.ts"
import { dump, expected } from "./storeSuite.ts"
import { history } from "./workload.ts"

const child = fileURLToPath(new URL("./child/lock.ts", import.meta.url))
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirror-locked-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

interface Holder {
  readonly process: ChildProcess
  readonly release: () => Promise<void>
}

/** Another process takes the write lock of `file`; resolved once it holds it. */
const holdLock = (file: string) =>
  Effect.promise(
    () =>
      new Promise<Holder>((resolve, reject) => {
        const p = spawn(process.execPath, ["--conditions=@workos-relay/source", child, file], {
          stdio: ["pipe", "pipe", "inherit"]
        })
        let out = ""
        let released: () => void = () => {}
        const done = new Promise<void>((r) => (released = r))
        p.stdout!.on("data", (chunk) => {
          out += String(chunk)
          if (out.includes("released")) released()
          else if (out.includes("locked"))
            resolve({
              process: p,
              release: () => {
                p.stdin!.write("go\n")
                return done
              }
            })
        })
        p.on("exit", (code) => {
          if (!out.includes("locked")) reject(new Error(`lock holder exited (${code}): ${out}`))
        })
      })
  )

/** The rows of the lock holder's own table: its transaction committed too. */
const appNotes = (file: string): number => {
  const db = new DatabaseSync(file, { readOnly: true })
  try {
    return (db.prepare("SELECT count(*) AS n FROM app_notes").get() as { n: number }).n
  } finally {
    db.close()
  }
}

const events = history(600, 7)

describe("a SQLite mirror locked by another process", () => {
  it.live(
    "keeps the event loop answering while it waits; the batch lands once when the lock goes",
    () =>
      Effect.gen(function* () {
        const file = path.join(dir, "waits.db")
        const store = yield* SqliteStore.make({ path: file })
        yield* deliverTo(store)(events.slice(0, 100))
        const holder = yield* holdLock(file)
        const delivery = yield* Effect.forkChild(deliverTo(store)(events.slice(100)))
        // Timers keep firing while the batch waits for the lock, for a second: the thread
        // is not blocked by it (a busy handler on this thread would hold it for its whole
        // timeout, 10 s before). The bound is generous: only such a wait exceeds it.
        let last = Date.now()
        let longestGap = 0
        const timer = setInterval(() => {
          const now = Date.now()
          longestGap = Math.max(longestGap, now - last)
          last = now
        }, 20)
        const started = Date.now()
        while (Date.now() - started < 1_000) yield* Effect.sleep(20)
        clearInterval(timer)
        expect(longestGap, "the longest stall of the event loop (ms)").toBeLessThan(5_000)
        expect(delivery.pollUnsafe(), "the batch waits for the lock").toBeUndefined()
        expect(yield* store.meta(metaKeys.lastEventId)).toBe(events[99]!.id)
        yield* Effect.promise(holder.release)
        const outcomes = yield* Fiber.join(delivery)
        expect(outcomes.length).toBe(500)
        expect(outcomes.every((o) => o._tag === "Delivered")).toBe(true)
        // Each event applied once, in the tables as applying each once in order leaves them.
        expect(yield* dump(store)).toEqual(expected(events))
        expect(yield* store.meta(metaKeys.lastEventId)).toBe(events.at(-1)!.id)
        expect(appNotes(file)).toBe(1)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "a lock held past lockWait fails the batch retryably, saying why; delivered again it lands once",
    () =>
      Effect.gen(function* () {
        const file = path.join(dir, "bound.db")
        const config = Schema.decodeUnknownSync(definition.config)({
          path: file,
          lockWait: "300ms"
        })
        const sink = yield* definition.make(config, { name: "mirror" })
        yield* sink.deliver(events.slice(0, 100))
        const holder = yield* holdLock(file)
        const failure = yield* Effect.flip(sink.deliver(events.slice(100)))
        expect(failure).toBeInstanceOf(CoreSink.SinkUnavailable)
        expect(failure.message).toMatch(
          /^mirror .*bound\.db: applying a batch failed: another process has held the database's write lock for 0\.\d s .*nothing was written, it will be tried again$/
        )
        // Status reads wait too, and say the same when the lock outlasts them.
        const store = yield* SqliteStore.make({ path: file, lockWait: 200 })
        expect(yield* store.meta(metaKeys.lastEventId)).toBe(events[99]!.id)
        yield* Effect.promise(holder.release)
        // The runner delivers the batch again: it lands, once.
        const outcomes = yield* sink.deliver(events.slice(100))
        expect(outcomes.every((o) => o._tag === "Delivered")).toBe(true)
        expect(yield* dump(store)).toEqual(expected(events))
        expect(yield* store.meta(metaKeys.lastEventId)).toBe(events.at(-1)!.id)
      }).pipe(Effect.scoped),
    60_000
  )

  it("lockWait is checked: a duration from 100ms to 1h", () => {
    const decode = Schema.decodeUnknownResult(definition.config)
    expect(decode({ lockWait: "5s" })._tag).toBe("Success")
    expect(decode({ lockWait: "soon" })._tag).toBe("Failure")
    expect(decode({ lockWait: "2h" })._tag).toBe("Failure")
  })
})
