/** The webhook table's contract, run against each store (SQLite and Postgres). */
import { expect } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as StateStore from "../src/StateStore.ts"

const minute = 60_000

/** `reopen` gives the same store again, as a restarted runner would open it. */
export const exerciseWebhookTable = (
  store: StateStore.Service,
  reopen: () => Effect.Effect<StateStore.Service, unknown, any>
) =>
  Effect.gen(function* () {
    const now = Date.now()
    // Receipt: an upsert; a repeated delivery changes nothing, not even the time.
    expect(yield* store.recordWebhook("event_a", "user.created", now - 10 * minute)).toBe("new")
    expect(yield* store.recordWebhook("event_b", "user.updated", now - 9 * minute)).toBe("new")
    expect(yield* store.recordWebhook("event_c", "user.deleted", now - 2 * minute)).toBe("new")
    expect(yield* store.recordWebhook("event_a", "user.created", now)).toBe("pending")
    // A day-old one, seen long ago: pruned later.
    expect(yield* store.recordWebhook("event_old", "user.created", now - 25 * 60 * minute)).toBe(
      "new"
    )
    expect(yield* store.markWebhooksSeen(["event_old"], now - 24 * 60 * minute - 1)).toBe(1)

    // The reader returns a page: only announced, unseen ones are marked; once.
    expect(
      yield* store.markWebhooksSeen(["event_x", "event_a", "event_y", "event_c"], now - 1 * minute)
    ).toBe(2)
    expect(yield* store.markWebhooksSeen(["event_a"], now)).toBe(0)
    expect(yield* store.recordWebhook("event_a", "user.created", now)).toBe("seen")
    // More ids than one statement takes.
    const many = Array.from({ length: 1200 }, (_, i) => `event_n${String(i).padStart(4, "0")}`)
    expect(yield* store.markWebhooksSeen(many, now)).toBe(0)

    const pending = yield* store.pendingWebhooks()
    expect(pending).toEqual([
      {
        eventId: "event_b",
        eventType: "user.updated",
        receivedAt: now - 9 * minute,
        seenAt: undefined
      }
    ])

    const summary = yield* store.webhookSummary({
      since: now - 60 * minute,
      overdueBefore: now - 5 * minute,
      limit: 10
    })
    expect(summary.received).toBe(3)
    // a: 9 minutes ahead, c: 1 minute ahead; ascending.
    expect(summary.leads).toEqual([1 * minute, 9 * minute])
    expect(summary.overdue.total).toBe(1)
    expect(summary.overdue.oldest.map((w) => w.eventId)).toEqual(["event_b"])

    // Pruning drops seen rows older than the cut, never a pending one.
    expect(yield* store.recordWebhook("event_lost", "user.created", now - 30 * 60 * minute)).toBe(
      "new"
    )
    expect(yield* store.pruneWebhooks(now - 24 * 60 * minute)).toBe(1)
    expect(yield* store.recordWebhook("event_old", "user.created", now)).toBe("new")
    expect(yield* store.markWebhooksSeen(["event_old"], now)).toBe(1)

    // A restart keeps what was pending.
    const again = yield* reopen()
    expect((yield* again.pendingWebhooks()).map((w) => w.eventId)).toEqual([
      "event_lost",
      "event_b"
    ])
    const later = yield* again.webhookSummary({
      since: now - 60 * minute,
      overdueBefore: now - 5 * minute,
      limit: 1
    })
    expect(later.overdue.total).toBe(2)
    expect(later.overdue.oldest.map((w) => w.eventId)).toEqual(["event_lost"])
  })
