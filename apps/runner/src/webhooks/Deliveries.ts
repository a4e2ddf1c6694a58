/**
 * What the webhooks announced, against what the Events API returned: how far push
 * runs ahead of pull, and every announced event the API has not returned after a
 * while (`overdueAfter`), reported (log, metric, `status`), never silently forgotten.
 *
 * Kept in memory for the run; the ids remembered are bounded (`kept`), the oldest
 * seen ones dropped first, pending ones never. The state store keeps the same in its
 * webhook table (`Journal.ts`), so a restart starts with what was pending (`restore`)
 * and `status` can say it.
 */
import type { EventStream } from "@workos-relay/core"

export type Rejection = "header" | "signature" | "stale" | "source" | "body"

export interface Pending {
  readonly id: string
  readonly type: string
  readonly receivedAt: number
  overdue: boolean
}

const kept = 10_000

export class Deliveries {
  accepted = 0
  duplicates = 0
  readonly rejected = new Map<Rejection, number>()
  /** Announced events the reader has since returned, and the sum of how far push was ahead (ms). */
  seen = 0
  aheadMsSum = 0
  /** Announced events reported overdue (the API had not returned them after `overdueAfter`). */
  overdueTotal = 0
  private readonly pending = new Map<string, Pending>()
  private readonly done = new Set<string>()

  /** A verified delivery of event `id`: true when it is news (not yet announced nor read). */
  received(id: string, type: string, now = Date.now()): boolean {
    this.accepted++
    if (this.pending.has(id) || this.done.has(id)) {
      this.duplicates++
      return false
    }
    this.pending.set(id, { id, type, receivedAt: now, overdue: false })
    return true
  }

  /**
   * A delivery `received` took for news that the store already had seen: announced
   * and read before a restart (the memory's `done` starts empty). Not pending: the
   * reader's cursor is past it, so it would never be seen and be reported overdue.
   */
  alreadyKnown(id: string): void {
    this.duplicates++
    if (this.pending.delete(id)) this.remember(id)
  }

  /** Announced events still pending when the runner last stopped (from the store). */
  restore(
    pending: ReadonlyArray<{
      readonly id: string
      readonly type: string
      readonly receivedAt: number
    }>
  ): void {
    for (const p of pending) {
      if (this.pending.has(p.id) || this.done.has(p.id)) continue
      this.pending.set(p.id, { id: p.id, type: p.type, receivedAt: p.receivedAt, overdue: false })
    }
  }

  /**
   * Makes the store's pending rows this runner's: every runner behind the endpoint
   * keeps what it receives there, a standby too, but only the one holding the lease
   * reads. Rows not heard of are watched; pending ones the store no longer has (seen
   * by the runner that read them, before a takeover) are dropped. Returns the rows
   * already read here: the caller marks them seen in the store.
   */
  sync(
    rows: ReadonlyArray<{
      readonly id: string
      readonly type: string
      readonly receivedAt: number
    }>
  ): Array<string> {
    const inStore = new Set(rows.map((r) => r.id))
    for (const id of this.pending.keys()) if (!inStore.has(id)) this.pending.delete(id)
    const read: Array<string> = []
    for (const r of rows) {
      if (this.done.has(r.id)) read.push(r.id)
      else if (!this.pending.has(r.id))
        this.pending.set(r.id, { id: r.id, type: r.type, receivedAt: r.receivedAt, overdue: false })
    }
    return read
  }

  /** A delivery that could not be kept in the store (answered 503): its retry is news again. */
  forget(id: string): void {
    this.pending.delete(id)
  }

  reject(reason: Rejection): void {
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1)
  }

  /**
   * The reader returned these: announced ones are now seen (their ids returned, for
   * the store). Cheap when nothing is pending.
   */
  read(elements: ReadonlyArray<EventStream.Element>, now = Date.now()): Array<string> {
    const seen: Array<string> = []
    for (const element of elements) {
      const id = element._tag === "Event" ? element.event.id : element.error.id
      if (id === undefined) continue
      if (this.pending.size > 0) {
        const announced = this.pending.get(id)
        if (announced !== undefined) {
          this.pending.delete(id)
          seen.push(id)
          this.seen++
          this.aheadMsSum += Math.max(0, now - announced.receivedAt)
        }
      }
      this.remember(id)
    }
    return seen
  }

  /** Announced events older than `after` (ms) the API has not returned, newly overdue ones first told. */
  overdue(
    after: number,
    now = Date.now()
  ): { readonly fresh: Array<Pending>; readonly all: Array<Pending> } {
    const fresh: Array<Pending> = []
    const all: Array<Pending> = []
    for (const p of this.pending.values()) {
      if (now - p.receivedAt < after) continue
      all.push(p)
      if (!p.overdue) {
        p.overdue = true
        this.overdueTotal++
        fresh.push(p)
      }
    }
    return { fresh, all }
  }

  pendingCount(): number {
    return this.pending.size
  }

  private remember(id: string): void {
    this.done.add(id)
    if (this.done.size > kept) this.done.delete(this.done.values().next().value!)
  }
}
