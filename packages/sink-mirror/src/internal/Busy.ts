/**
 * Waiting out another process's write lock on a SQLite mirror without blocking.
 *
 * `node:sqlite` runs on the main thread: SQLite's own busy handler would sleep there,
 * and health checks, metrics and the other sinks would stall with it while an
 * application (or `sqlite3`, or a backup) holds the mirror's write lock. So the
 * connection's busy timeout is zero, an attempt that meets the lock fails at once
 * (`SQLITE_BUSY`), and this waits between attempts with `Effect.sleep`.
 */
import * as Effect from "effect/Effect"
import { StoreError } from "../Store.ts"

/** How long an operation waits out a lock by default before it fails (retryably). */
export const defaultLockWait = 30_000

/** SQLite's primary result codes that mean "another connection holds a lock". */
const lockCodes = new Set([
  5, // SQLITE_BUSY
  6, // SQLITE_LOCKED
  15 // SQLITE_PROTOCOL: a lock race in WAL mode
])

/** Did this driver error come from a lock another connection holds? */
export const isLocked = (cause: unknown): boolean => {
  const code = (cause as { errcode?: unknown } | null)?.errcode
  return typeof code === "number" && lockCodes.has(code & 0xff)
}

/** The error after `waited` ms locked: says what to look for, and that the batch is retried. */
export const lockedTooLong = (where: string, what: string, waited: number, cause: unknown) =>
  new StoreError({
    reason: `mirror ${where}: ${what} failed: another process has held the database's write lock for ${Math.round(waited / 100) / 10} s (an application's open transaction, sqlite3, a backup?); nothing was written, it will be tried again`,
    cause
  })

/**
 * Runs `attempt` (synchronous, on this thread) until it does not meet a lock, sleeping
 * between attempts (20 ms, doubling to 500 ms); after `lockWait` ms a `StoreError`
 * that says so. Any other failure fails at once, described by `fail`.
 */
export const patiently = <A>(
  attempt: () => A,
  options: {
    readonly lockWait: number
    readonly where: string
    readonly what: string
    readonly fail: (cause: unknown) => StoreError
  }
): Effect.Effect<A, StoreError> =>
  Effect.gen(function* () {
    const started = Date.now()
    let delay = 20
    while (true) {
      let cause: unknown
      try {
        return attempt()
      } catch (e) {
        cause = e
      }
      if (!isLocked(cause)) return yield* Effect.fail(options.fail(cause))
      const waited = Date.now() - started
      if (waited >= options.lockWait)
        return yield* Effect.fail(lockedTooLong(options.where, options.what, waited, cause))
      yield* Effect.sleep(Math.min(delay, Math.max(1, options.lockWait - waited)))
      delay = Math.min(delay * 2, 500)
    }
  })
