/**
 * A token bucket: `perSecond` tokens a second, at most `burst` saved up.
 * `take` reserves one token and says how long to wait before using it, so
 * callers that queue up are spaced out in the order they asked.
 */
export interface TokenBucket {
  /** Milliseconds to wait (0: go now) before the caller may send, its token reserved. */
  readonly take: (nowMs: number) => number
}

export const make = (perSecond: number, burst: number): TokenBucket => {
  let tokens = burst
  let updated: number | undefined
  return {
    take: (now) => {
      if (updated !== undefined)
        tokens = Math.min(burst, tokens + ((now - updated) * perSecond) / 1000)
      updated = now
      tokens -= 1
      // Below zero the token is borrowed from the future: wait until it has been earned.
      return tokens >= 0 ? 0 : Math.ceil((-tokens * 1000) / perSecond)
    }
  }
}
