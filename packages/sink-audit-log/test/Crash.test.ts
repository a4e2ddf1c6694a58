/**
 * A process killed with SIGKILL in the middle of a batch's transaction leaves no
 * partial batch: after a restart the store holds exactly the batches committed
 * before, the chain verifies, and the next append goes on from there.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { fileURLToPath } from "node:url"
import { PgClient } from "@effect/sql-pg"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Postgres from "@workos-relay/testing/Postgres"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type { Config } from "../src/Config.ts"
import * as Record from "../src/Record.ts"
import * as Sink from "../src/Sink.ts"
import { idCountsInJsonl, notExactlyOnce } from "./faults.ts"
import { events } from "./fixtures.ts"

const child = fileURLToPath(new URL("./child/append.ts", import.meta.url))
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "audit-crash-"))
let database: { readonly url: string; readonly stop: () => Promise<void> }
beforeAll(async () => {
  database = await Postgres.start()
}, 120_000)
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true })
  await database?.stop()
})

const run = (kind: string, where: string, size: number): ChildProcess =>
  spawn(process.execPath, ["--conditions=@workos-relay/source", child, kind, where, String(size)], {
    stdio: ["ignore", "pipe", "inherit"]
  })

/** Waits for a line on the child's stdout. */
const line = (p: ChildProcess, text: string) =>
  new Promise<void>((resolve, reject) => {
    let out = ""
    p.stdout!.on("data", (chunk) => {
      out += String(chunk)
      if (out.includes(text)) resolve()
    })
    p.on("exit", () => reject(new Error(`child exited before printing ${text}; printed ${out}`)))
  })

/** Polls `inTransaction` until it says the child holds its write transaction, then SIGKILLs it. */
const killMidTransaction = (p: ChildProcess, inTransaction: Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    let printedDone = false
    p.stdout!.on("data", (chunk) => {
      if (String(chunk).includes("done")) printedDone = true
    })
    const exited = new Promise((resolve) => p.on("exit", resolve))
    let inside = false
    for (let i = 0; i < 5000 && !inside; i++) {
      inside = yield* inTransaction
      if (!inside) yield* Effect.sleep("2 millis")
    }
    p.kill("SIGKILL")
    yield* Effect.promise(() => exited)
    return inside && !printedDone
  })

const afterRestart = (config: Config) =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* Sink.openStore(config)
      const held = (yield* store.query({ limit: 1_000_000 })).length
      const report = yield* store.verify
      const next = yield* store.append(events(10, 51).map(Record.fromEvent))
      return { held, report, next, after: yield* store.verify }
    })
  )

describe("a crash mid-batch", () => {
  it.live(
    "SQLite: SIGKILL inside the transaction leaves only the committed batches",
    () =>
      Effect.gen(function* () {
        const file = path.join(dir, "audit.db")
        const p = run("sqlite", file, 20_000)
        yield* Effect.promise(() => line(p, "appending"))
        const probe = new DatabaseSync(file)
        probe.exec("PRAGMA busy_timeout = 0")
        // The child holds the write lock exactly while its batch's transaction is open.
        const killedInside = yield* killMidTransaction(
          p,
          Effect.sync(() => {
            try {
              probe.exec("BEGIN IMMEDIATE")
              probe.exec("ROLLBACK")
              return false
            } catch (e) {
              // SQLITE_BUSY: the child holds the write lock. Any other error is not that.
              if ((e as { errcode?: number }).errcode === 5) return true
              throw e
            }
          })
        )
        probe.close()
        expect(killedInside).toBe(true)
        const { held, report, next, after } = yield* afterRestart({ store: "sqlite", path: file })
        expect(held).toBe(50)
        expect(report.problem).toBeNull()
        expect(next).toEqual({ inserted: 10, duplicates: 0 })
        expect(after.problem).toBeNull()
        expect(after.records).toBe(60)
      }),
    60_000
  )

  it.live(
    "Postgres: SIGKILL inside the transaction leaves only the committed batches",
    () =>
      Effect.gen(function* () {
        const url = Redacted.make(database.url)
        const p = run("postgres", database.url, 10_000)
        yield* Effect.promise(() => line(p, "appending"))
        const client = yield* Layer.build(PgClient.layer({ url, maxConnections: 1 }))
        // The child's batch holds the chain row locked while its transaction is open.
        const killedInside = yield* killMidTransaction(
          p,
          Effect.gen(function* () {
            const sql = yield* PgClient.PgClient
            const rows = yield* sql.unsafe<{ n: string }>(
              "SELECT count(*) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'audit_chain' AND l.mode = 'RowShareLock' AND l.pid <> pg_backend_pid()"
            )
            return Number(rows[0]?.n ?? 0) > 0
          }).pipe(Effect.provideContext(client), Effect.orDie)
        )
        expect(killedInside).toBe(true)
        const { held, report, next, after } = yield* afterRestart({ store: "postgres", url })
        expect(held).toBe(50)
        expect(report.problem).toBeNull()
        expect(next).toEqual({ inserted: 10, duplicates: 0 })
        expect(after.records).toBe(60)
      }),
    60_000
  )

  it.live(
    "JSONL: SIGKILL while the batch's lines are written, before head.json: each event once after restart",
    () =>
      Effect.gen(function* () {
        // Until a kill lands inside (the window is the write and fsync of a large batch).
        let inside = false
        for (let attempt = 1; attempt <= 5 && !inside; attempt++) {
          const directory = path.join(dir, `jsonl-${attempt}`)
          const p = run("jsonl", directory, 20_000)
          yield* Effect.promise(() => line(p, "appending"))
          const dayFile = () => fs.readdirSync(directory).find((n) => n.endsWith(".jsonl"))!
          const committedSize = fs.statSync(path.join(directory, dayFile())).size
          const headSeq = () =>
            (
              JSON.parse(fs.readFileSync(path.join(directory, "head.json"), "utf8")) as {
                seq: number
              }
            ).seq
          // Inside: lines of the large batch are in the file, and head.json still names record #50.
          inside = yield* killMidTransaction(
            p,
            Effect.sync(
              () =>
                fs.statSync(path.join(directory, dayFile())).size > committedSize &&
                headSeq() === 50
            )
          )
          if (!inside) continue
          // The kill left lines past the committed head: a batch half or wholly written.
          expect(fs.statSync(path.join(directory, dayFile())).size).toBeGreaterThan(committedSize)
          const { held, report, next, after } = yield* afterRestart({
            store: "jsonl",
            directory,
            gzip: false
          })
          const ids = events(60).map((e) => e.id)
          const counts = idCountsInJsonl(directory)
          // The large batch is all there or not at all (its last line carried the commit).
          if (held === 50) {
            expect(notExactlyOnce(counts, ids)).toEqual([])
            expect(next).toEqual({ inserted: 10, duplicates: 0 })
          } else {
            expect(held).toBe(20_050)
            expect(
              notExactlyOnce(
                counts,
                events(20_050).map((e) => e.id)
              )
            ).toEqual([])
            expect(next).toEqual({ inserted: 0, duplicates: 10 })
          }
          expect(report.problem).toBeNull()
          expect(after.problem).toBeNull()
        }
        expect(inside).toBe(true)
      }),
    120_000
  )
})
