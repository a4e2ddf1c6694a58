/**
 * A request budget: how many requests a minute everything in this process may send
 * to WorkOS with one API key (readers, `status`, connection checks), shared.
 *
 * WorkOS allows 6,000 requests a minute per key, for every endpoint together, and
 * answers 429 with `Retry-After` past it. The budget paces requests evenly (one
 * every `60 s / maxPerMinute`, with a short burst allowed after a quiet spell), so
 * parallel readers use the key's allowance without running into the limit. A 429
 * slows it down for everyone: nobody sends before `Retry-After` has passed, and the
 * rate is halved, then climbs back to the full rate over `recovery` (other clients of
 * the same key, which we cannot see, may be using its allowance).
 *
 * `forKey` gives the one budget of a key in this process, so that every client made
 * with that key shares it.
 */
import { createHash } from "node:crypto"
import * as Effect from "effect/Effect"

/** The default share of WorkOS's 6,000 requests a minute: room left for other clients of the key. */
export const defaultMaxPerMinute = 4_800

export interface Options {
  /** Requests a minute at most (default 4,800: 80% of WorkOS's 6,000). */
  readonly maxPerMinute?: number | undefined
  /** Requests that may go at once after a quiet spell (default: one second's worth, at least 1). */
  readonly burst?: number | undefined
  /** How long the rate takes to climb back to the full rate after a 429 (default 30 s). */
  readonly recoveryMs?: number | undefined
}

/** What the budget has done so far, for metrics and `status`. */
export interface Stats {
  /** Requests let through. */
  readonly requests: number
  /** 429s reported. */
  readonly throttled: number
  /** Time spent waiting for a slot, summed over requests (ms). */
  readonly waitedMs: number
  readonly maxPerMinute: number
}

export class RequestBudget {
  private max: number
  private readonly burst: number
  private readonly recoveryMs: number
  /** The time the next request may go at the full rate (ms): a virtual schedule (GCRA). */
  private nextAt = 0
  /** Nobody sends before this (a `Retry-After`). */
  private pausedUntil = 0
  /** The rate factor right after the last 429, and when that was. */
  private cutFactor = 1
  private cutAt = Number.NEGATIVE_INFINITY
  private requests = 0
  private throttled = 0
  private waitedMs = 0

  constructor(options: Options = {}) {
    const max = options.maxPerMinute ?? defaultMaxPerMinute
    if (!(max > 0) || !Number.isFinite(max))
      throw new RangeError(`maxPerMinute must be a positive number, got ${max}`)
    this.max = max
    this.burst = Math.max(1, Math.floor(options.burst ?? max / 60))
    this.recoveryMs = options.recoveryMs ?? 30_000
  }

  /** Requests a minute at most, at the full rate. */
  get maxPerMinute(): number {
    return this.max
  }

  /** Lowers the rate (never raises it): the strictest caller of a shared budget wins. */
  lower(maxPerMinute: number): void {
    if (maxPerMinute > 0 && maxPerMinute < this.max) this.max = maxPerMinute
  }

  /** The rate factor now: 1 at the full rate, lower for a while after a 429. */
  private factor(now: number): number {
    if (this.cutFactor >= 1) return 1
    const f = this.cutFactor + ((1 - this.cutFactor) * (now - this.cutAt)) / this.recoveryMs
    if (f >= 1) this.cutFactor = 1
    return Math.min(1, f)
  }

  /**
   * Books the next slot and says how long to wait for it (ms; 0: go now). Each
   * booking moves the schedule on by one interval at the rate in force.
   */
  reserve(now = Date.now()): number {
    const interval = 60_000 / (this.max * this.factor(now))
    // After a quiet spell the schedule may lag `now` by at most a burst.
    const earliest = Math.max(this.pausedUntil, now - (this.burst - 1) * interval)
    const at = Math.max(this.nextAt, earliest)
    this.nextAt = at + interval
    this.requests++
    const wait = Math.max(0, at - now)
    this.waitedMs += wait
    return wait
  }

  /** Waits for a slot, then lets the request go. */
  readonly take: Effect.Effect<void> = Effect.suspend(() => {
    const wait = this.reserve()
    return wait <= 0 ? Effect.void : Effect.sleep(wait)
  })

  /**
   * WorkOS answered 429: nobody sends before `retryAfterMs` has passed (1 s when it
   * did not say), and the rate is halved, recovering over the next `recoveryMs`.
   */
  throttle(retryAfterMs: number | undefined, now = Date.now()): void {
    this.throttled++
    const wait = retryAfterMs === undefined || !(retryAfterMs >= 0) ? 1000 : retryAfterMs
    this.pausedUntil = Math.max(this.pausedUntil, now + wait)
    this.cutFactor = Math.max(0.05, this.factor(now) / 2)
    this.cutAt = now
    // What was booked at the old pace moves behind the pause.
    if (this.nextAt < this.pausedUntil) this.nextAt = this.pausedUntil
  }

  stats(): Stats {
    return {
      requests: this.requests,
      throttled: this.throttled,
      waitedMs: this.waitedMs,
      maxPerMinute: this.max
    }
  }
}

export const make = (options: Options = {}): RequestBudget => new RequestBudget(options)

const byKey = new Map<string, RequestBudget>()

/**
 * The budget of an API key (and base URL) in this process: the same object for every
 * caller with that key, made with `options` by the first. A later caller asking a
 * lower `maxPerMinute` lowers it for everyone (the strictest setting wins).
 */
export const forKey = (apiKey: string, baseUrl: string, options: Options = {}): RequestBudget => {
  const id = createHash("sha256").update(`${baseUrl}\n${apiKey}`).digest("hex")
  const existing = byKey.get(id)
  if (existing !== undefined) {
    existing.lower(options.maxPerMinute ?? defaultMaxPerMinute)
    return existing
  }
  const budget = new RequestBudget(options)
  byKey.set(id, budget)
  return budget
}
