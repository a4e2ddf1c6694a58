/**
 * A lane's buffer: one producer (the shared reader or the lane's own), one consumer
 * (the lane). Plain arrays and callbacks rather than a queue of effects: a page is
 * handed over with one push, and the hot path allocates nothing per event.
 *
 * The elements sit in a ring of fixed size, not an array that grows and is sliced: an
 * array that grows leaves its old backing store behind, and once that store is in the
 * old generation it keeps every event it held alive through young-generation GCs
 * until the next full GC (most events were promoted so; bench/backfill.ts).
 */
import type { EventStream } from "@workos-relay/core"
import * as Effect from "effect/Effect"

type Element = EventStream.Element

export class LaneBuffer {
  private ring: Array<Element | undefined>
  /** Where the oldest element is, and how many there are. */
  private head = 0
  private count = 0
  private onItems: (() => void) | undefined
  private onSpace: (() => void) | undefined
  private spaceWanted = 0
  /** Set once the source will give no more (replay), so the consumer may finish. */
  ended = false
  /**
   * Set when the reader has handed on all there is for now and waits for its next
   * poll; cleared by the next page. A batch then goes without waiting for more.
   */
  caughtUp = false
  readonly capacity: number
  constructor(capacity: number) {
    this.capacity = capacity
    this.ring = new Array(capacity).fill(undefined)
  }
  get size(): number {
    return this.count
  }
  get free(): number {
    return this.capacity - this.count
  }
  push(elements: ReadonlyArray<Element>): void {
    this.caughtUp = false
    // A page larger than the room is taken when the buffer is empty (`waitSpace`).
    if (this.count + elements.length > this.ring.length) this.grow(this.count + elements.length)
    const ring = this.ring
    let at = (this.head + this.count) % ring.length
    for (let i = 0; i < elements.length; i++) {
      ring[at] = elements[i]!
      at = at + 1 === ring.length ? 0 : at + 1
    }
    this.count += elements.length
    this.wake()
  }
  shift(): Element | undefined {
    if (this.count === 0) return undefined
    const element = this.ring[this.head]!
    this.ring[this.head] = undefined
    this.head = this.head + 1 === this.ring.length ? 0 : this.head + 1
    this.count--
    if (this.onSpace !== undefined && (this.free >= this.spaceWanted || this.count === 0)) {
      const f = this.onSpace
      this.onSpace = undefined
      f()
    }
    return element
  }
  /** Puts back an element the batch had no room for. */
  unshift(element: Element): void {
    if (this.count === this.ring.length) this.grow(this.count + 1)
    this.head = this.head === 0 ? this.ring.length - 1 : this.head - 1
    this.ring[this.head] = element
    this.count++
  }
  /** A larger ring, the elements in order from its start; the old one is emptied. */
  private grow(size: number): void {
    const ring = new Array<Element | undefined>(size).fill(undefined)
    for (let i = 0; i < this.count; i++) {
      const at = (this.head + i) % this.ring.length
      ring[i] = this.ring[at]
      this.ring[at] = undefined
    }
    this.ring = ring
    this.head = 0
  }
  /** The reader has caught up (see `caughtUp`): a consumer waiting for more is woken. */
  readerCaughtUp(): void {
    this.caughtUp = true
    this.wake()
  }
  /** Lets a producer waiting for room go on: the lane stopped, and nothing will be taken any more. */
  release(): void {
    if (this.onSpace !== undefined) {
      const f = this.onSpace
      this.onSpace = undefined
      f()
    }
  }
  wake(): void {
    if (this.onItems !== undefined) {
      const f = this.onItems
      this.onItems = undefined
      f()
    }
  }
  /** Completes once there is something to take (or the buffer ended, or `wake` is called). */
  readonly waitItems: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (this.size > 0 || this.ended) return resume(Effect.void)
    this.onItems = () => resume(Effect.void)
    return Effect.sync(() => {
      this.onItems = undefined
    })
  })
  /** Completes once `n` more elements fit (or the buffer is empty). */
  waitSpace(n: number): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (this.free >= n || this.size === 0) return resume(Effect.void)
      // `shift` calls back once there is room for all `n`, not at every element taken.
      this.spaceWanted = n
      this.onSpace = () => resume(Effect.void)
      return Effect.sync(() => {
        this.onSpace = undefined
      })
    })
  }
}
