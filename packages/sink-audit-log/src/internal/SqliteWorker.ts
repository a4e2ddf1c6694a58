/**
 * The SQLite writer thread: owns one connection to the store and appends the batches
 * the main thread posts, one transaction each, in the order they arrive. `node:sqlite`
 * is synchronous; here its work (hashing, inserting, the fsync of each commit) runs
 * beside the main thread's fetching and decoding instead of in turn with it.
 *
 * Messages in: `{ id, batch }` (a `PreparedBatch`) or `{ close: true }`.
 * Messages out: `{ id, inserted, duplicates }` or `{ id, error }`.
 */
import type { DatabaseSync } from "node:sqlite"
import { parentPort, workerData } from "node:worker_threads"
import { describeCause } from "./Rows.ts"
import { type Appended, appender, openWriter, type PreparedBatch } from "./SqliteAppend.ts"

export type Request =
  | { readonly id: number; readonly batch: PreparedBatch }
  | { readonly close: true }

export type Reply =
  | ({ readonly id: number } & Appended)
  | { readonly id: number; readonly error: string }

const port = parentPort!
const { path } = workerData as { readonly path: string }

// Opened on the first batch (and again after a failed open), so that an open error
// is the reply to a batch.
let connection: { db: DatabaseSync; append: (batch: PreparedBatch) => Appended } | undefined

port.on("message", (request: Request) => {
  if ("close" in request) {
    connection?.db.close()
    connection = undefined
    port.close()
    return
  }
  let reply: Reply
  try {
    if (connection === undefined) {
      const db = openWriter(path)
      connection = { db, append: appender(db) }
    }
    reply = { id: request.id, ...connection.append(request.batch) }
  } catch (e) {
    reply = { id: request.id, error: describeCause(e) }
  }
  port.postMessage(reply)
})
