import { PgClient } from "@effect/sql-pg"
import { describe, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Postgres from "../src/Postgres.ts"

layer(Postgres.layer, { timeout: 60_000 })("Postgres", (it) => {
  describe("database", () => {
    it.effect("is a fresh, empty database that answers queries", () =>
      Effect.gen(function* () {
        const db = yield* Postgres.PostgresDatabase
        const rows = yield* Effect.gen(function* () {
          const sql = yield* PgClient.PgClient
          yield* sql`CREATE TABLE t (n int)`
          yield* sql`INSERT INTO t VALUES (1), (2)`
          return yield* sql<{
            db: string
            n: number
          }>`SELECT current_database() AS db, sum(n)::int AS n FROM t`
        }).pipe(Effect.provide(PgClient.layer({ url: db.url })))
        expect(rows).toEqual([{ db: db.name, n: 3 }])
      })
    )
  })
})
