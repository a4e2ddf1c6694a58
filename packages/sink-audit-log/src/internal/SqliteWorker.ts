/**
 * The SQLite writer thread: owns one connection to the store and appends the batches
 * the main thread posts, one transaction each, in the order they arrive. `node:sqlite`
 * is synchronous; here its work (hashing, inserting, the fsync of each commit) runs
 * beside the main thread's fetching and decoding instead of in turn with it.
 *
 * A batch comes in parts (the main thread prepares the next part while this one
 * inserts the last); the transaction commits with the part marked `last`.
 *
 * Messages in: `{ id, part, last }` (a `PreparedBatch`), `{ id, abort: reason }` (the
 * main thread could not prepare the rest: roll back, then fail the batch with that
 * reason) or `{ close: true }`.
 * Messages out, one per batch: `{ id, inserted, duplicates }` or `{ id, error, broken? }`
 * (`broken`: a `BrokenStore`, so that the main thread knows retrying cannot help).
 */
import type { DatabaseSync } from "node:sqlite"
import { parentPort, workerData } from "node:worker_threads"
import type { PruneOptions } from "../Store.ts"
import { describeCause } from "./Rows.ts"
import {
  type Appended,
  type Appender,
  appender,
  BrokenStore,
  openWriter,
  type PreparedBatch
} from "./SqliteAppend.ts"
import { isLocked, migrate, type Pruned, prune } from "./SqliteSchema.ts"

export type Request =
  | { readonly id: number; readonly part: PreparedBatch; readonly last: boolean }
  | { readonly id: number; readonly abort: string }
  | { readonly id: number; readonly migrate: true }
  | { readonly id: number; readonly prune: string; readonly options: PruneOptions }
  | { readonly close: true }

export type Reply =
  | ({ readonly id: number } & Appended)
  | { readonly id: number; readonly migrated: true; readonly tooNew?: number }
  | ({ readonly id: number; readonly pruned: true } & Pruned)
  | {
      readonly id: number
      readonly error: string
      readonly broken?: true
      /** Another connection held the lock longer than the busy timeout. */
      readonly locked?: true
    }

const port = parentPort!
const { path, busyTimeoutMs } = workerData as {
  readonly path: string
  readonly busyTimeoutMs: number
}

const failure = (id: number, e: unknown): Reply => ({
  id,
  error: describeCause(e),
  ...(e instanceof BrokenStore ? { broken: true as const } : {}),
  ...(isLocked(e) ? { locked: true as const } : {})
})

// Opened on the first batch (and again after a failed open), so that an open error
// is the reply to a batch.
// The appender's statements are prepared on the first batch: after the migration made its tables.
let connection: { db: DatabaseSync; appender?: Appender } | undefined
// A batch that failed: the rest of its parts are dropped.
let failed: number | undefined

port.on("message", (request: Request) => {
  if ("close" in request) {
    connection?.db.close()
    connection = undefined
    port.close()
    return
  }
  if (request.id === failed) return
  let reply: Reply | undefined
  if ("abort" in request) {
    connection?.appender?.abort()
    failed = request.id
    port.postMessage({ id: request.id, error: request.abort } satisfies Reply)
    return
  }
  try {
    if (connection === undefined) {
      const db = openWriter(path, busyTimeoutMs)
      connection = { db }
    }
    if ("migrate" in request) {
      const tooNew = migrate(connection.db)
      port.postMessage({
        id: request.id,
        migrated: true,
        ...(tooNew === undefined ? {} : { tooNew })
      } satisfies Reply)
      return
    }
    if ("prune" in request) {
      const pruned = prune(connection.db, request.prune, request.options)
      port.postMessage({ id: request.id, pruned: true, ...pruned } satisfies Reply)
      return
    }
    connection.appender ??= appender(connection.db)
    const appended = connection.appender.appendPart(request.part, request.last)
    if (appended !== undefined) reply = { id: request.id, ...appended }
  } catch (e) {
    if ("part" in request) failed = request.id
    reply = failure(request.id, e)
  }
  if (reply !== undefined) port.postMessage(reply)
})
