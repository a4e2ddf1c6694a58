import { PgClient } from "@effect/sql-pg"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Postgres from "@workos-relay/testing/Postgres"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as PostgresStore from "../src/PostgresStore.ts"
import { storeSuite } from "./storeSuite.ts"

let database: { readonly url: string; readonly stop: () => Promise<void> }
beforeAll(async () => {
  database = await Postgres.start()
}, 120_000)
afterAll(() => database?.stop())

const url = () => Redacted.make(database.url)
let n = 0
let schema = ""

storeSuite(
  "Postgres",
  (options = {}) => {
    // Each open without a prefix is a new schema; with one, the same schema as the last.
    if (options.prefix === undefined || schema === "") schema = `mirror_${++n}`
    return PostgresStore.makeFromUrl({ url: url(), schema, ...options })
  },
  { rounds: 3 }
)

const raw = (text: string) =>
  Effect.gen(function* () {
    const sql = yield* PgClient.PgClient
    return yield* sql.unsafe<Record<string, unknown>>(text)
  }).pipe(Effect.provide(PgClient.layer({ url: url(), maxConnections: 1 })))

describe("Postgres store", () => {
  it.live("puts its tables in the configured schema, with typed columns", () =>
    Effect.gen(function* () {
      const store = yield* PostgresStore.makeFromUrl({ url: url(), schema: "app_mirror" })
      expect(store.where).not.toContain("password")
      const rows = yield* raw(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'app_mirror' AND table_name = 'workos_users' ORDER BY ordinal_position"
      )
      expect(rows.map((r) => `${r.column_name}:${r.data_type}`)).toEqual([
        "id:text",
        "email:text",
        "first_name:text",
        "last_name:text",
        "email_verified:boolean",
        "external_id:text",
        "last_sign_in_at:timestamp with time zone",
        "created_at:timestamp with time zone",
        "updated_at:timestamp with time zone",
        "object:jsonb",
        "last_event_id:text",
        "last_event_at:timestamp with time zone",
        "deleted_at:timestamp with time zone",
        "deleted_with:text"
      ])
    }).pipe(Effect.scoped)
  )

  it.live("refuses a store of a newer schema version", () =>
    Effect.gen(function* () {
      yield* Effect.scoped(PostgresStore.makeFromUrl({ url: url(), schema: "newer" }))
      yield* raw("UPDATE newer.workos_mirror_meta SET value = '7' WHERE key = 'schema_version'")
      const error = yield* Effect.flip(
        Effect.scoped(PostgresStore.makeFromUrl({ url: url(), schema: "newer" }))
      )
      expect(error.message).toContain("version 7, newer than this package's (2)")
    })
  )
})
