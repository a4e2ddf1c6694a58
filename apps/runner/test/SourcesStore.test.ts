/**
 * The state store with several sources: a checkpoint per (sink, source), fenced per
 * key; dead letters that say their source; and a database of before (schema version
 * 3, one checkpoint per sink) that opens with each sink's checkpoint as its
 * checkpoint for source `default`. On SQLite and on a real Postgres.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Postgres from "@workos-relay/testing/Postgres"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { SqlClient } from "effect/sql"
import * as StateStore from "../src/StateStore.ts"

const letter = (id: string): StateStore.NewDeadLetter => ({
  eventId: id,
  eventType: "dsync.user.created",
  event: JSON.stringify({ id }),
  error: "rejected",
  attempts: 1,
  firstFailure: 1,
  lastFailure: 2
})

/** The tables as the runner of before left them: migrations 1 to 3, with a checkpoint and a dead letter. */
const oldStatements = (dialect: "sqlite" | "postgres"): Array<string> => [
  ...StateStore.migrations
    .filter((m) => m.version <= 3)
    .flatMap((m) =>
      m.statements.map((s) =>
        s.replace(
          "__SERIAL__",
          dialect === "sqlite" ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGSERIAL PRIMARY KEY"
        )
      )
    ),
  "CREATE TABLE relay_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
  "INSERT INTO relay_migrations (version, applied_at) VALUES (1, 1), (2, 2), (3, 3)",
  `INSERT INTO relay_checkpoints (sink, cursor, event_created_at, updated_at)
     VALUES ('slack', 'event_01OLD', '2026-11-01T00:00:00.000Z', 1234)`,
  `INSERT INTO relay_dead_letters (sink, event_id, event_type, event, error, attempts, first_failure, last_failure)
     VALUES ('slack', 'event_DEAD', 'dsync.user.created', '{}', 'rejected', 3, 1, 2)`,
  "INSERT INTO relay_lease (name, holder, token, expires_at) VALUES ('runner', 'old', 7, 0)"
]

/** What both stores must do; `open` opens the same store again. */
const exercise = (
  open: () => Effect.Effect<StateStore.Service, StateStore.StoreError, Scope.Scope>
) =>
  Effect.gen(function* () {
    const a = yield* open()
    // The old checkpoint is the sink's checkpoint for source default, exactly.
    expect(yield* a.checkpoint("slack")).toEqual({
      sink: "slack",
      source: "default",
      cursor: "event_01OLD",
      eventCreatedAt: "2026-11-01T00:00:00.000Z",
      updatedAt: 1234
    })
    expect(yield* a.checkpoint("slack", "default")).toEqual(yield* a.checkpoint("slack"))
    expect(yield* a.checkpoint("slack", "staging")).toBeUndefined()
    expect((yield* a.deadLetters({ sink: "slack" })).map((l) => [l.eventId, l.source])).toEqual([
      ["event_DEAD", "default"]
    ])
    // The lease's token goes on from where it was: a runner of before stays fenced.
    const lease = (yield* a.acquireLease("new", 60_000))!
    expect(lease.token).toBe(8)
    expect((yield* a.commit("slack", "event_STALE", null, 7).pipe(Effect.flip))._tag).toBe(
      "LeaseLost"
    )

    // Two sources of one sink: two checkpoints, each moved on its own.
    yield* a.commit("slack", "event_P1", null, lease.token, "prod")
    yield* a.commit("slack", "event_S1", null, lease.token, "staging")
    yield* a.commit("slack", "event_P2", null, lease.token, "prod")
    yield* a.addDeadLetters("slack", [letter("event_SD")], lease.token, "staging")
    expect(
      (yield* a.checkpoints()).filter((c) => c.sink === "slack").map((c) => [c.source, c.cursor])
    ).toEqual([
      ["default", "event_01OLD"],
      ["prod", "event_P2"],
      ["staging", "event_S1"]
    ])
    expect(
      (yield* a.deadLetters({ sink: "slack", source: "staging" })).map((l) => l.eventId)
    ).toEqual(["event_SD"])
    expect(yield* a.deadLetterCounts()).toEqual({ slack: 2 })

    // The fence holds for every key: once another takes the lease, no source's checkpoint moves.
    yield* a.releaseLease("new", lease.token)
    const b = yield* open()
    const taken = (yield* b.acquireLease("other", 60_000))!
    for (const source of ["default", "prod", "staging"])
      expect(
        (yield* a.commit("slack", "event_LATE", null, lease.token, source).pipe(Effect.flip))._tag
      ).toBe("LeaseLost")
    expect(
      (yield* a.addDeadLetters("slack", [letter("x")], lease.token, "prod").pipe(Effect.flip))._tag
    ).toBe("LeaseLost")
    yield* b.commit("slack", "event_S2", null, taken.token, "staging")
    expect((yield* a.checkpoint("slack", "staging"))?.cursor).toBe("event_S2")
    expect((yield* a.checkpoint("slack", "prod"))?.cursor).toBe("event_P2")
    expect((yield* a.checkpoint("slack"))?.cursor).toBe("event_01OLD")
  })

describe("state store, several sources (SQLite)", () => {
  it.live("a database of before opens where it was; checkpoints per (sink, source), fenced", () =>
    Effect.gen(function* () {
      const path = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "relay-sources-")), "state.db")
      const old = new DatabaseSync(path)
      for (const statement of oldStatements("sqlite")) old.exec(statement)
      old.close()
      yield* exercise(() => StateStore.sqlite(path))
      // Migrated once: opening it again changes nothing.
      const again = yield* StateStore.sqlite(path)
      expect((yield* again.checkpoint("slack"))?.cursor).toBe("event_01OLD")
      const versions = new DatabaseSync(path)
        .prepare("SELECT version FROM relay_migrations ORDER BY version")
        .all()
        .map((r) => Number(r.version))
      expect(versions).toEqual(StateStore.migrations.map((m) => m.version))
    }).pipe(Effect.scoped)
  )
})

let server: { readonly url: string; readonly stop: () => Promise<void> }
beforeAll(async () => {
  server = await Postgres.start()
}, 120_000)
afterAll(async () => {
  await server?.stop()
})

/** Runs statements on a Postgres database, outside the store. */
const onPostgres = (url: string, statements: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const { PgClient } = yield* Effect.promise(() => import("@effect/sql-pg"))
    const context = yield* Layer.build(PgClient.layer({ url: Redacted.make(url) }))
    const sql = Context.get(context, SqlClient.SqlClient)
    for (const statement of statements) yield* sql.unsafe(statement)
  }).pipe(Effect.scoped)

describe("state store, several sources (Postgres)", { timeout: 90_000 }, () => {
  it.live("a database of before opens where it was; checkpoints per (sink, source), fenced", () =>
    Effect.gen(function* () {
      // A database of its own on the test server, made as the runner of before made it.
      const name = `old_${Math.random().toString(36).slice(2, 10)}`
      yield* onPostgres(server.url, [`CREATE DATABASE ${name}`])
      const url = new URL(server.url)
      url.pathname = `/${name}`
      yield* onPostgres(url.toString(), oldStatements("postgres"))
      yield* exercise(() => StateStore.postgres(Redacted.make(url.toString())))
    }).pipe(Effect.scoped)
  )
})
