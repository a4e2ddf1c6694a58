/**
 * The main thread's handle on the SQLite writer thread (`SqliteWorker.ts`): started on
 * the first append, so that a store only read (`audit query`, `audit verify`) starts
 * no thread. Keeps the process alive only while a batch is in flight.
 */
import { once } from "node:events"
import { Worker } from "node:worker_threads"
import type { AuditRecord } from "../Record.ts"
import type { PruneOptions } from "../Store.ts"
import { describeCause } from "./Rows.ts"
import { type Appended, BrokenStore, prepareBatch } from "./SqliteAppend.ts"
import type { Pruned } from "./SqliteSchema.ts"
import type { Reply, Request } from "./SqliteWorker.ts"

// From the sources (tests, `--conditions=@workos-relay/source`) Node runs the .ts itself.
const workerUrl = new URL(
  import.meta.url.endsWith(".ts") ? "./SqliteWorker.ts" : "./SqliteWorker.js",
  import.meta.url
)

/** Another connection held the store's write lock longer than the busy timeout. */
export class LockedStore extends Error {}

export interface Writer {
  /** Appends a batch on the writer thread; rejects with the thread's error. */
  readonly append: (records: ReadonlyArray<AuditRecord>) => Promise<Appended>
  /** Opens the store on the thread and migrates it; resolves with the version found when it is newer. */
  readonly migrate: () => Promise<number | undefined>
  /** Retention on the thread: deletes the chain's prefix created before `cutoff` (ISO). */
  readonly prune: (cutoff: string, options: PruneOptions) => Promise<Pruned>
  /** Lets the batches already posted finish, then ends the thread. */
  readonly close: () => Promise<void>
}

/**
 * Records per part: the writer thread inserts one part while this thread turns the
 * next into rows, so a batch is written in about the time of the slower of the two
 * instead of their sum.
 */
const partSize = 250

/** How long `close` waits for the batches in flight before stopping the thread anyway. */
const closeTimeoutMs = 30_000

export const writer = (path: string, busyTimeoutMs: number): Writer => {
  let worker: Worker | undefined
  let nextId = 0
  const pending = new Map<number, { resolve: (reply: Reply) => void; reject: (e: Error) => void }>()

  const failAll = (error: Error) => {
    for (const p of pending.values()) p.reject(error)
    pending.clear()
  }

  const start = (): Worker => {
    const w = new Worker(workerUrl, { workerData: { path, busyTimeoutMs } })
    w.unref()
    w.on("message", (reply: Reply) => {
      const p = pending.get(reply.id)
      if (p === undefined) return
      pending.delete(reply.id)
      if (pending.size === 0) w.unref()
      if (!("error" in reply)) p.resolve(reply)
      else if (reply.broken === true) p.reject(new BrokenStore(reply.error))
      else if (reply.locked === true) p.reject(new LockedStore(reply.error))
      else p.reject(new Error(reply.error))
    })
    // A thread that died fails the batches it held; the next append starts a new one.
    // (Their transactions were not committed: SQLite rolls them back.)
    w.on("error", (e) => {
      if (worker === w) worker = undefined
      failAll(e)
    })
    w.on("exit", (code) => {
      if (worker === w) worker = undefined
      failAll(new Error(`the SQLite writer thread stopped (exit code ${code})`))
    })
    return w
  }

  const post = (w: Worker, request: Request) => w.postMessage(request)

  /** Sends one request; resolves with its reply. */
  const ask = (request: (id: number) => Request) =>
    new Promise<Reply>((resolve, reject) => {
      worker ??= start()
      const w = worker
      const id = nextId++
      pending.set(id, { resolve, reject })
      w.ref()
      post(w, request(id))
    })

  return {
    migrate: () =>
      ask((id) => ({ id, migrate: true })).then((reply) =>
        "tooNew" in reply ? reply.tooNew : undefined
      ),
    prune: (cutoff, options) =>
      ask((id) => ({ id, prune: cutoff, options })).then((reply) => {
        const { deleted, anchor } = reply as Reply & Pruned
        return { deleted, anchor }
      }),
    append: (records) =>
      new Promise<Reply>((resolve, reject) => {
        worker ??= start()
        const w = worker
        const id = nextId++
        pending.set(id, { resolve, reject })
        w.ref()
        // All parts are posted in this one synchronous run, so two batches never interleave.
        let from = 0
        try {
          do {
            const part = prepareBatch(records.slice(from, from + partSize))
            from += partSize
            post(w, { id, part, last: from >= records.length })
          } while (from < records.length)
        } catch (e) {
          // The thread rolls back what it took of this batch, then fails it with this error.
          post(w, { id, abort: describeCause(e) })
        }
      }).then((reply) => {
        const { inserted, duplicates } = reply as Reply & Appended
        return { inserted, duplicates }
      }),
    close: async () => {
      const w = worker
      worker = undefined
      if (w === undefined) return
      const exited = once(w, "exit")
      post(w, { close: true })
      const timer = setTimeout(() => void w.terminate(), closeTimeoutMs)
      try {
        await exited
      } finally {
        clearTimeout(timer)
      }
    }
  }
}
