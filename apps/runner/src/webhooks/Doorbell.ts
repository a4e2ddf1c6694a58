/**
 * The doorbell: a webhook says "something happened", and the reader asks WorkOS now
 * instead of at the end of its poll interval. It never carries an event: the Events
 * API stays the one source of order, completeness and cursor.
 *
 * A ring asks for two polls: one now (the event is usually readable by the time
 * WorkOS sends its webhook) and one after the visibility delay (WorkOS holds events
 * back from cursor reads for a few seconds). Each poll waits `debounce` to gather
 * rings, and a poll already due within `debounce` after the time wanted serves it
 * too: a burst of webhooks costs one or two requests, a flood about one per
 * `debounce`, and with `debounce` at least the visibility delay a lone ring costs
 * one request (the "now" poll waits for the one after the delay).
 *
 * A wake is kept for each reader until it waits again: a reader in the middle of a
 * request when the bell rings polls once more right after, since its answer may
 * predate the event.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

export interface Options {
  /** How long after a ring to poll again, for an event not yet readable (ms). */
  readonly visibilityDelay: number
  /** How long a poll waits to gather rings (ms); polls wanted within it share one. */
  readonly debounce: number
}

export class Doorbell {
  /** Rings so far, and the wakes they caused (each wake is one poll per reader). */
  rings = 0
  wakes = 0
  private generation = 0
  private fired = Deferred.makeUnsafe<void>()
  /** The grid times a wake is already due at. */
  private readonly due = new Set<number>()
  private readonly options: Options
  private readonly scope: Scope.Scope

  constructor(options: Options, scope: Scope.Scope) {
    this.options = options
    this.scope = scope
  }

  /** Something happened: a poll now, and another once the visibility delay has passed. */
  ring(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.rings++
      const now = Date.now()
      return Effect.andThen(
        this.wakeAt(now, now),
        this.wakeAt(now + this.options.visibilityDelay, now)
      )
    })
  }

  /**
   * An effect for one reader's stream to wait on (core's `EventStream` `wake`): it
   * completes at the next wake, or at once when a wake came since it last completed.
   */
  subscribe(): Effect.Effect<void> {
    let seen = this.generation
    return Effect.suspend(() => {
      if (this.generation !== seen) {
        seen = this.generation
        return Effect.void
      }
      return Deferred.await(this.fired).pipe(
        Effect.andThen(
          Effect.sync(() => {
            seen = this.generation
          })
        )
      )
    })
  }

  /** A poll at `at` or up to `debounce` after it; shared with any already due in that span. */
  private wakeAt(at: number, now: number): Effect.Effect<void> {
    const step = this.options.debounce
    for (const due of this.due) if (due >= at && due <= at + step) return Effect.void
    const slot = at + step
    this.due.add(slot)
    return Effect.sleep(Math.max(0, slot - now)).pipe(
      Effect.andThen(
        Effect.sync(() => {
          this.due.delete(slot)
          this.fire()
        })
      ),
      Effect.forkIn(this.scope),
      Effect.asVoid
    )
  }

  private fire(): void {
    this.generation++
    this.wakes++
    const fired = this.fired
    this.fired = Deferred.makeUnsafe<void>()
    Deferred.doneUnsafe(fired, Effect.void)
  }
}
