/**
 * What the webhook table costs the reader: marking a page's announced events seen
 * (one statement per page) against the checkpoint commit every page already costs,
 * and a receipt (one upsert per new webhook), on SQLite in a temp folder.
 *
 *   node --conditions=@workos-relay/source bench/webhook-table.ts [pages] [pageSize]
 *   (defaults: 2000 pages of 100 events)
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Effect from "effect/Effect"
import * as StateStore from "../src/StateStore.ts"

const [pages = 2000, pageSize = 100] = process.argv.slice(2).map(Number)

const perOp = (ms: number, n: number) => `${((ms * 1000) / n).toFixed(1)} µs`

const main = Effect.gen(function* () {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "relay-bench-webhooks-"))
  const store = yield* StateStore.sqlite(Path.join(dir, "state.db"))
  const lease = (yield* store.acquireLease("bench", 600_000))!
  const ids = (page: number) =>
    Array.from(
      { length: pageSize },
      (_, i) => `event_${String(page * pageSize + i).padStart(12, "0")}`
    )

  // Baseline: the checkpoint commit each page already costs.
  let t = performance.now()
  for (let p = 0; p < pages; p++)
    yield* store.commit("sink", ids(p)[pageSize - 1]!, null, lease.token)
  const commitMs = performance.now() - t

  // Receipt: one upsert per announced event (all of them announced: the worst case).
  t = performance.now()
  const now = Date.now()
  for (let p = 0; p < pages; p++)
    for (const id of ids(p)) yield* store.recordWebhook(id, "user.created", now)
  const receiptMs = performance.now() - t

  // The reader: one statement per page marks its announced events seen.
  t = performance.now()
  let marked = 0
  for (let p = 0; p < pages; p++) marked += yield* store.markWebhooksSeen(ids(p), now + 1)
  const seenMs = performance.now() - t

  t = performance.now()
  const summary = yield* store.webhookSummary({
    since: now - 3_600_000,
    overdueBefore: now,
    limit: 10
  })
  const statusMs = performance.now() - t

  console.log(
    `pages: ${pages} of ${pageSize} events; rows: ${summary.received}, marked seen: ${marked}`
  )
  console.log(`checkpoint commit per page (baseline): ${perOp(commitMs, pages)}`)
  console.log(
    `mark a page seen:                      ${perOp(seenMs, pages)} (${(seenMs / commitMs).toFixed(2)}x the commit)`
  )
  console.log(`receipt upsert per webhook:            ${perOp(receiptMs, pages * pageSize)}`)
  console.log(`status's summary over ${summary.received} rows:   ${statusMs.toFixed(1)} ms`)
  Fs.rmSync(dir, { recursive: true, force: true })
})

Effect.runPromise(Effect.scoped(main)).catch((e) => {
  console.error(e)
  process.exit(1)
})
