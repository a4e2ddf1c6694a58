/**
 * How long a state store operation keeps trying when it fails in a way that waiting
 * can fix: another process holding SQLite's write lock (a backup, `sqlite3` left in a
 * transaction, a standby taking the lease), a full disk, a read-only mount, a
 * Postgres that restarts.
 *
 * SQLite's own busy handler would wait on the main thread (`node:sqlite` is
 * synchronous: health checks, metrics and deliveries stall with it), so the SQLite
 * store asks with a busy timeout of zero and waits here instead, with `Effect.sleep`
 * between attempts. The first failure of an operation is logged, then one line every
 * ten seconds while it lasts, and a line when it succeeds again.
 */
import * as Effect from "effect/Effect"
import { formatMillis } from "../internal/Text.ts"
import { type Service, StoreError } from "./Model.ts"

export interface Patience {
  /** How long (ms) to retry while the store is locked by another process (Infinity: until it is free). */
  readonly locked: number
  /** How long (ms) to retry other faults waiting can fix: a full disk, a read-only folder, a server away. */
  readonly faults: number
}

/** `run`: a checkpoint or a dead letter is never given up; delivery pauses until it is saved. */
export const untilDone: Patience = {
  locked: Number.POSITIVE_INFINITY,
  faults: Number.POSITIVE_INFINITY
}
/** Opening the store as `run` starts: a lock is waited out; a full disk or a read-only folder ends the run, said clearly. */
export const openForRun: Patience = { locked: Number.POSITIVE_INFINITY, faults: 0 }
/** A command someone waits on (`status`, `dead-letters`, `replay`): a lock of up to 10 s. */
export const command: Patience = { locked: 10_000, faults: 0 }
/** Giving the lease back as the runner stops: brief; the lease expires anyway. */
export const atShutdown: Patience = { locked: 3_000, faults: 0 }

/** After this long locked, a lock is worth a line in the log (a standby's lease check takes microseconds). */
const quietLockMs = 1_000
const logEveryMs = 10_000

/** Retries `effect` while it fails with a `StoreError` that `patience` waits out. */
export const patiently =
  (patience: Patience) =>
  <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.gen(function* () {
      const started = Date.now()
      let delay = 20
      let loggedAt: number | undefined
      let last: StoreError | undefined
      while (true) {
        const result = yield* Effect.result(effect)
        if (result._tag === "Success") {
          if (loggedAt !== undefined && last !== undefined)
            yield* Effect.logInfo(
              `${last.store}: ${last.operation} succeeded after ${formatMillis(Date.now() - started)} of retries`
            )
          return result.success
        }
        const error = result.failure
        if (!(error instanceof StoreError) || !error.retriable) return yield* Effect.fail(error)
        const locked = error.problem === "locked"
        const elapsed = Date.now() - started
        if (elapsed >= (locked ? patience.locked : patience.faults)) {
          return yield* Effect.fail(
            (last !== undefined
              ? new StoreError({
                  store: error.store,
                  operation: `${error.operation} (tried for ${formatMillis(elapsed)})`,
                  cause: error.cause
                })
              : error) as E
          )
        }
        last = error
        const now = Date.now()
        const due =
          loggedAt === undefined
            ? locked
              ? elapsed >= quietLockMs
              : true
            : now - loggedAt >= logEveryMs
        if (due) {
          loggedAt = now
          yield* Effect.logWarning(
            `${error.message}; retrying${elapsed > 0 ? ` (failing for ${formatMillis(elapsed)})` : ""}`
          )
        }
        yield* Effect.sleep(delay)
        // Locks are usually short: look again soon. Other faults wait for a person.
        delay = Math.min(delay * 2, locked ? 500 : 5_000)
      }
    })

/** The store with every operation retried as `patience` says (giving the lease back: `atShutdown`). */
export const withPatience = (store: Service, patience: Patience): Service => {
  const p = patiently(patience)
  return {
    description: store.description,
    checkpoints: () => p(store.checkpoints()),
    checkpoint: (sink, source) => p(store.checkpoint(sink, source)),
    commit: (sink, cursor, createdAt, token, source) =>
      p(store.commit(sink, cursor, createdAt, token, source)),
    addDeadLetters: (sink, letters, token, source) =>
      p(store.addDeadLetters(sink, letters, token, source)),
    deadLetters: (filter) => p(store.deadLetters(filter)),
    deadLetterCounts: () => p(store.deadLetterCounts()),
    deadLetterCountsBySource: () => p(store.deadLetterCountsBySource()),
    dropDeadLetters: (ids) => p(store.dropDeadLetters(ids)),
    updateDeadLetter: (id, error, attempts, lastFailure) =>
      p(store.updateDeadLetter(id, error, attempts, lastFailure)),
    acquireLease: (holder, ttl) => p(store.acquireLease(holder, ttl)),
    renewLease: (holder, token, ttl) => p(store.renewLease(holder, token, ttl)),
    releaseLease: (holder, token) => patiently(atShutdown)(store.releaseLease(holder, token)),
    lease: () => p(store.lease()),
    recordGap: (gap) => p(store.recordGap(gap)),
    gaps: (limit) => p(store.gaps(limit)),
    recordWebhook: (id, type, at) => p(store.recordWebhook(id, type, at)),
    markWebhooksSeen: (ids, at) => p(store.markWebhooksSeen(ids, at)),
    pendingWebhooks: () => p(store.pendingWebhooks()),
    pruneWebhooks: (before) => p(store.pruneWebhooks(before)),
    webhookSummary: (options) => p(store.webhookSummary(options))
  }
}
