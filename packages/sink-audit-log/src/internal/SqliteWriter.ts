/**
 * The main thread's handle on the SQLite writer thread (`SqliteWorker.ts`): started on
 * the first append, so that a store only read (`audit query`, `audit verify`) starts
 * no thread. Keeps the process alive only while a batch is in flight.
 */
import { once } from "node:events"
import { Worker } from "node:worker_threads"
import type { Appended, PreparedBatch } from "./SqliteAppend.ts"
import type { Reply, Request } from "./SqliteWorker.ts"

// From the sources (tests, `--conditions=@workos-relay/source`) Node runs the .ts itself.
const workerUrl = new URL(
  import.meta.url.endsWith(".ts") ? "./SqliteWorker.ts" : "./SqliteWorker.js",
  import.meta.url
)

export interface Writer {
  /** Appends a batch on the writer thread; rejects with the thread's error. */
  readonly append: (batch: PreparedBatch) => Promise<Appended>
  /** Lets the batches already posted finish, then ends the thread. */
  readonly close: () => Promise<void>
}

/** How long `close` waits for the batches in flight before stopping the thread anyway. */
const closeTimeoutMs = 30_000

export const writer = (path: string): Writer => {
  let worker: Worker | undefined
  let nextId = 0
  const pending = new Map<number, { resolve: (a: Appended) => void; reject: (e: Error) => void }>()

  const failAll = (error: Error) => {
    for (const p of pending.values()) p.reject(error)
    pending.clear()
  }

  const start = (): Worker => {
    const w = new Worker(workerUrl, { workerData: { path } })
    w.unref()
    w.on("message", (reply: Reply) => {
      const p = pending.get(reply.id)
      if (p === undefined) return
      pending.delete(reply.id)
      if (pending.size === 0) w.unref()
      if ("error" in reply) p.reject(new Error(reply.error))
      else p.resolve({ inserted: reply.inserted, duplicates: reply.duplicates })
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

  return {
    append: (batch) =>
      new Promise<Appended>((resolve, reject) => {
        worker ??= start()
        const id = nextId++
        pending.set(id, { resolve, reject })
        worker.ref()
        post(worker, { id, batch })
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
