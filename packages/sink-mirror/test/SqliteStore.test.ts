import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { migrations } from "../src/internal/Sql.ts"
import { deliverTo } from "../src/Sink.ts"
import * as SqliteStore from "../src/SqliteStore.ts"
import { cascadeScenario, dump, expected, storeSuite } from "./storeSuite.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirror-sqlite-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
let n = 0
let current = ""

storeSuite(
  "SQLite",
  (options = {}) => {
    // Each open without a prefix is a new file; with one, the same file as the last.
    if (options.prefix === undefined || current === "") current = path.join(dir, `m-${++n}.db`)
    return SqliteStore.make({ path: current, ...options })
  },
  { rounds: 6 }
)

describe("SQLite store", () => {
  it.live("refuses a store of a newer schema version", () =>
    Effect.gen(function* () {
      const file = path.join(dir, "newer.db")
      yield* Effect.scoped(SqliteStore.make({ path: file }))
      const db = new DatabaseSync(file)
      db.exec("UPDATE workos_mirror_meta SET value = '99' WHERE key = 'schema_version'")
      db.close()
      const error = yield* Effect.flip(Effect.scoped(SqliteStore.make({ path: file })))
      expect(error.message).toContain("version 99, newer than this package's (2)")
    })
  )

  it.live(
    "migrates a version 1 store (no deleted_with) and keeps its rows; cascades then apply",
    () =>
      Effect.gen(function* () {
        const file = path.join(dir, "v1.db")
        const events = cascadeScenario()
        const db = new DatabaseSync(file)
        db.exec("CREATE TABLE workos_mirror_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        for (const s of migrations("sqlite", { prefix: "workos_" })[0]!) db.exec(s)
        db.exec("INSERT INTO workos_mirror_meta VALUES ('schema_version', '1')")
        db.close()
        // A version 1 store with the rows of the events before the deletes.
        const before = events.filter((e) => !e.event.endsWith("deleted"))
        const store = yield* SqliteStore.make({ path: file })
        yield* deliverTo(store)(before)
        yield* deliverTo(store)(events.filter((e) => e.event.endsWith("deleted")))
        expect(yield* dump(store)).toEqual(expected(events))
        expect(yield* store.meta("schema_version")).toBe("2")
      }).pipe(Effect.scoped)
  )

  it.live("says where and what when the file cannot be opened", () =>
    Effect.gen(function* () {
      const file = path.join(dir, "not-a-db")
      fs.writeFileSync(file, "hello, this is not SQLite ".repeat(100))
      const error = yield* Effect.flip(Effect.scoped(SqliteStore.make({ path: file })))
      expect(error.message).toMatch(/^mirror .*not-a-db: (opening|migrating) failed: /)
    })
  )
})
