import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { statusText, storeConfig } from "../src/Cli.ts"
import { deliverTo, openStore } from "../src/Sink.ts"
import { history } from "./workload.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirror-cli-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const none = {
  sqlite: Option.none(),
  postgres: Option.none(),
  schema: Option.none(),
  prefix: Option.none(),
  config: Option.none(),
  sink: Option.none()
} as const

describe("mirror status", () => {
  it.live("prints rows per table, live and deleted, and the last event applied", () =>
    Effect.gen(function* () {
      const file = path.join(dir, "status.db")
      const config = yield* storeConfig({ ...none, sqlite: Option.some(file) })
      const events = history(500, 9)
      yield* Effect.scoped(Effect.flatMap(openStore(config), (store) => deliverTo(store)(events)))
      const counts = yield* Effect.scoped(Effect.flatMap(openStore(config), (s) => s.counts))
      const text = yield* statusText(config)
      expect(text).toContain(`mirror ${file}`)
      expect(text).toMatch(
        new RegExp(`workos_users\\s+${counts.users.live}\\s+${counts.users.deleted}\\n`)
      )
      expect(counts.users.live + counts.users.deleted).toBeGreaterThan(0)
      expect(text).toContain(
        `last event applied: ${events.at(-1)!.id} (created ${events.at(-1)!.created_at}`
      )
      expect(text).toContain("last reconcile: never")
    })
  )

  it.live("reads the mirror sink of a config file, its path relative to the file", () =>
    Effect.gen(function* () {
      const file = path.join(dir, "relay.yaml")
      fs.writeFileSync(
        file,
        "sinks:\n  a:\n    type: console\n  m:\n    type: mirror\n    path: ./data/m.db\n    prefix: app_\n"
      )
      const config = yield* storeConfig({ ...none, config: Option.some(file) })
      expect(config).toEqual({ path: path.join(dir, "data/m.db"), prefix: "app_" })
      const text = yield* statusText(config)
      expect(text).toContain("app_organizations")
      expect(text).toContain("last event applied: none yet")
    })
  )

  it.live("says what is wrong with the flags or the entry (exit 2)", () =>
    Effect.gen(function* () {
      const both = yield* Effect.flip(
        storeConfig({
          ...none,
          sqlite: Option.some("a.db"),
          postgres: Option.some("postgres://h/d")
        })
      )
      expect(both.message).toBe("choose one store: --sqlite and --postgres were given")
      const badPrefix = yield* Effect.flip(storeConfig({ ...none, prefix: Option.some("x y") }))
      expect(badPrefix.message).toMatch(/^--sqlite\.prefix: prefix must be letters/)
      const file = path.join(dir, "none.yaml")
      fs.writeFileSync(file, "sinks:\n  a:\n    type: console\n")
      const missing = yield* Effect.flip(storeConfig({ ...none, config: Option.some(file) }))
      expect(missing.message).toContain('no sink of type mirror under "sinks"')
      expect(missing._tag).toBe("UsageError")
    })
  )
})
