/**
 * A lane's buffer: one producer (the shared reader or the lane's own), one consumer
 * (the lane). Plain arrays and callbacks rather than a queue of effects: a page is
 * handed over with one push, and the hot path allocates nothing per event.
 */
import type { EventStream } from "@workos-relay/core"
import * as Effect from "effect/Effect"

type Element = EventStream.Element

export class LaneBuffer {
  private items: Array<Element> = []
  private head = 0
  private onItems: (() => void) | undefined
  private onSpace: (() => void) | undefined
  private spaceWanted = 0
  /** Set once the source will give no more (replay), so the consumer may finish. */
  ended = false
  readonly capacity: number
  constructor(capacity: number) {
    this.capacity = capacity
  }
  get size(): number {
    return this.items.length - this.head
  }
  get free(): number {
    return this.capacity - this.size
  }
  push(elements: ReadonlyArray<Element>): void {
    for (let i = 0; i < elements.length; i++) this.items.push(elements[i]!)
    this.wake()
  }
  shift(): Element | undefined {
    if (this.head >= this.items.length) return undefined
    const element = this.items[this.head]!
    this.items[this.head++] = undefined as any
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    if (this.onSpace !== undefined && (this.free >= this.spaceWanted || this.size === 0)) {
      const f = this.onSpace
      this.onSpace = undefined
      f()
    }
    return element
  }
  /** Puts back an element the batch had no room for. */
  unshift(element: Element): void {
    if (this.head > 0) this.items[--this.head] = element
    else this.items.unshift(element)
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
