/**
 * A process killed with SIGKILL in the middle of a batch's transaction leaves no part
 * of that batch; the pipeline then delivers again from its checkpoint (here: every
 * batch again, in another order), and the tables end as applying each event once in
 * order would leave them.
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
import { deliverTo, openStore } from "../src/Sink.ts"
import { dump, expected } from "./storeSuite.ts"
import { deliveries, history } from "./workload.ts"

const child = fileURLToPath(new URL("./child/apply.ts", import.meta.url))
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirror-crash-"))
let database: { readonly url: string; readonly stop: () => Promise<void> }
beforeAll(async () => {
  database = await Postgres.start()
}, 120_000)
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true })
  await database?.stop()
})

const size = 30_000
const committed = 2_000

const run = (kind: string, where: string): ChildProcess =>
  spawn(
    process.execPath,
    ["--conditions=@workos-relay/source", child, kind, where, String(size), String(committed)],
    { stdio: ["ignore", "pipe", "inherit"] }
  )

const line = (p: ChildProcess, text: string) =>
  new Promise<void>((resolve, reject) => {
    let out = ""
    p.stdout!.on("data", (chunk) => {
      out += String(chunk)
      if (out.includes(text)) resolve()
    })
    p.on("exit", () => reject(new Error(`child exited before printing ${text}; printed ${out}`)))
  })

/** Polls `inTransaction` until the child holds its write transaction, then SIGKILLs it. */
const killMidTransaction = (p: ChildProcess, inTransaction: Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    let printedDone = false
    p.stdout!.on("data", (chunk) => {
      if (String(chunk).includes("done")) printedDone = true
    })
    const exited = new Promise((resolve) => p.on("exit", resolve))
    let inside = false
    for (let i = 0; i < 10_000 && !inside; i++) {
      inside = yield* inTransaction
      if (!inside) yield* Effect.sleep("2 millis")
    }
    p.kill("SIGKILL")
    yield* Effect.promise(() => exited)
    return inside && !printedDone
  })

/** After the crash: the committed events alone, then everything delivered again: the tables as in order. */
const afterRestart = (config: Config) =>
  Effect.scoped(
    Effect.gen(function* () {
      const events = history(size, 21)
      const store = yield* openStore(config)
      const held = yield* dump(store)
      expect(held).toEqual(expected(events.slice(0, committed)))
      for (const batch of deliveries(events, 4, { batch: 2000 })) yield* deliverTo(store)(batch)
      expect(yield* dump(store)).toEqual(expected(events))
    })
  )

describe("a crash mid-batch", () => {
  it.live(
    "SQLite: SIGKILL inside the transaction, then re-delivery: the same tables",
    () =>
      Effect.gen(function* () {
        const file = path.join(dir, "mirror.db")
        const p = run("sqlite", file)
        yield* Effect.promise(() => line(p, "applying"))
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
            } catch {
              return true
            }
          })
        )
        probe.close()
        expect(killedInside).toBe(true)
        yield* afterRestart({ store: "sqlite", path: file, prefix: "workos_" })
      }),
    120_000
  )

  it.live(
    "Postgres: SIGKILL inside the transaction, then re-delivery: the same tables",
    () =>
      Effect.gen(function* () {
        const url = Redacted.make(database.url)
        const p = run("postgres", database.url)
        yield* Effect.promise(() => line(p, "applying"))
        const client = yield* Layer.build(PgClient.layer({ url, maxConnections: 1 }))
        // The child's batch holds row locks on the users table while its transaction is open.
        const killedInside = yield* killMidTransaction(
          p,
          Effect.gen(function* () {
            const sql = yield* PgClient.PgClient
            const rows = yield* sql.unsafe<{ n: string }>(
              "SELECT count(*) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'workos_organizations' AND l.mode = 'RowExclusiveLock' AND l.pid <> pg_backend_pid()"
            )
            return Number(rows[0]?.n ?? 0) > 0
          }).pipe(Effect.provideContext(client), Effect.orDie)
        )
        expect(killedInside).toBe(true)
        yield* afterRestart({ store: "postgres", url, schema: "crash", prefix: "workos_" })
      }).pipe(Effect.scoped),
    120_000
  )
})
