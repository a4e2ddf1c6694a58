import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as StateStore from "../src/StateStore.ts"
import { exerciseWebhookTable } from "./webhookTable.ts"

const tempDb = () => Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "relay-store-")), "state.db")

const letter = (id: string): StateStore.NewDeadLetter => ({
  eventId: id,
  eventType: "dsync.user.created",
  event: JSON.stringify({ id, event: "dsync.user.created" }),
  error: "rejected: too large",
  attempts: 3,
  firstFailure: 1000,
  lastFailure: 2000
})

describe("StateStore (SQLite)", () => {
  it.live(
    "the webhook table: upsert on receipt, seen once, pruned, pending kept across restarts",
    () =>
      Effect.gen(function* () {
        const path = tempDb()
        const store = yield* StateStore.sqlite(path)
        yield* exerciseWebhookTable(store, () => StateStore.sqlite(path))
      }).pipe(Effect.scoped)
  )

  it.live("migrates once, keeps checkpoints and dead letters across reopenings", () =>
    Effect.gen(function* () {
      const path = tempDb()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const store = yield* StateStore.sqlite(path)
          const lease = (yield* store.acquireLease("a", 10_000))!
          yield* store.commit("slack", "event_1", "2026-11-01T00:00:00.000Z", lease.token)
          yield* store.commit("slack", "event_2", "2026-11-01T00:00:01.000Z", lease.token)
          yield* store.addDeadLetters("slack", [letter("event_9"), letter("event_10")], lease.token)
        })
      )
      yield* Effect.scoped(
        Effect.gen(function* () {
          const store = yield* StateStore.sqlite(path)
          const checkpoint = yield* store.checkpoint("slack")
          expect(checkpoint?.cursor).toBe("event_2")
          expect(checkpoint?.eventCreatedAt).toBe("2026-11-01T00:00:01.000Z")
          expect(yield* store.deadLetterCounts()).toEqual({ slack: 2 })
          const letters = yield* store.deadLetters({ sink: "slack" })
          expect(letters.map((l) => l.eventId)).toEqual(["event_9", "event_10"])
          expect(letters[0]).toMatchObject({
            attempts: 3,
            firstFailure: 1000,
            lastFailure: 2000,
            error: "rejected: too large"
          })
          yield* store.updateDeadLetter(letters[0]!.id, "still failing", 4, 3000)
          expect((yield* store.deadLetters({ ids: [letters[0]!.id] }))[0]).toMatchObject({
            attempts: 4,
            error: "still failing"
          })
          expect(yield* store.dropDeadLetters([letters[0]!.id])).toBe(1)
          expect(yield* store.deadLetterCounts()).toEqual({ slack: 1 })
        })
      )
    })
  )

  it.live("a second holder waits; takes over after expiry; the stale one is fenced off", () =>
    Effect.gen(function* () {
      const path = tempDb()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const a = yield* StateStore.sqlite(path)
          const b = yield* StateStore.sqlite(path)
          const leaseA = (yield* a.acquireLease("runner-a", 60_000))!
          expect(leaseA.token).toBe(1)
          expect(yield* b.acquireLease("runner-b", 60_000)).toBeUndefined()
          // The last renewal gives it 1 ms: its lease runs out, however slow the machine.
          expect(yield* a.renewLease("runner-a", leaseA.token, 1)).toBe(true)
          yield* Effect.sleep(20)
          // A stopped renewing (it froze): B takes over with a new token.
          const leaseB = (yield* b.acquireLease("runner-b", 10_000))!
          expect(leaseB.token).toBe(2)
          expect((yield* a.lease())?.holder).toBe("runner-b")
          // A wakes up: it can neither renew nor commit nor dead-letter.
          expect(yield* a.renewLease("runner-a", leaseA.token, 60_000)).toBe(false)
          const lost = yield* a.commit("slack", "event_old", null, leaseA.token).pipe(Effect.flip)
          expect(lost._tag).toBe("LeaseLost")
          expect(
            (yield* a.addDeadLetters("slack", [letter("x")], leaseA.token).pipe(Effect.flip))._tag
          ).toBe("LeaseLost")
          yield* b.commit("slack", "event_new", null, leaseB.token)
          expect((yield* a.checkpoint("slack"))?.cursor).toBe("event_new")
          // Releasing hands it over at once.
          yield* b.releaseLease("runner-b", leaseB.token)
          expect((yield* a.acquireLease("runner-a", 10_000))?.token).toBe(3)
        })
      )
    })
  )
})

describe("StateStore (Postgres)", () => {
  it.effect("a server that cannot be reached is named, without the URL's password", () =>
    Effect.gen(function* () {
      const error = yield* Layer.build(
        StateStore.layer({
          type: "postgres",
          url: Redacted.make("postgres://relay:s3cret@127.0.0.1:1/relay_state")
        })
      ).pipe(Effect.scoped, Effect.flip)
      expect(error.message).toMatch(
        /^Postgres state store at 127\.0\.0\.1:1\/relay_state: connect failed: .+ \(.*ECONNREFUSED.*\): the database server cannot be reached$/
      )
      expect(error.message).not.toContain("s3cret")
    })
  )
})
