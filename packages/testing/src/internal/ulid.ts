/**
 * ULID-like ids, as WorkOS's (`event_01EHZNVPK3SFK441A1RGBFSHRT`): 10 characters of
 * millisecond time, then 16 of randomness, in Crockford's base 32. Like a monotonic
 * ULID factory, two ids made in the same millisecond differ by one in their random
 * part, so ids sort exactly in the order they were made: cursor order is id order.
 */

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

/** A small seeded PRNG (mulberry32): the same seed gives the same ids, run after run. */
export const prng = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const encodeTime = (ms: number): string => {
  let out = ""
  let rest = ms
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[rest % 32]! + out
    rest = Math.floor(rest / 32)
  }
  return out
}

/** Adds one to a base-32 string (the random part never overflows in practice: 80 bits). */
const increment = (digits: string): string => {
  const chars = digits.split("")
  for (let i = chars.length - 1; i >= 0; i--) {
    const value = ALPHABET.indexOf(chars[i]!)
    if (value < 31) {
      chars[i] = ALPHABET[value + 1]!
      return chars.join("")
    }
    chars[i] = "0"
  }
  return chars.join("")
}

/** A factory of strictly increasing ids; `next(ms)` never goes back even if `ms` does. */
export const monotonic = (random: () => number) => {
  let lastTime = -1
  let lastRandom = ""
  return (ms: number): string => {
    if (ms > lastTime) {
      lastTime = ms
      lastRandom = ""
      // The top bit stays clear, so increments in the same millisecond never overflow.
      for (let i = 0; i < 16; i++)
        lastRandom += ALPHABET[Math.floor(random() * (i === 0 ? 16 : 32))]
    } else {
      lastRandom = increment(lastRandom)
    }
    return encodeTime(lastTime) + lastRandom
  }
}

/** A fresh id of a prefix (`directory_user_01H...`), not tied to any ordering. */
export const randomId = (prefix: string, ms: number, random: () => number): string => {
  let suffix = ""
  for (let i = 0; i < 16; i++) suffix += ALPHABET[Math.floor(random() * 32)]
  return `${prefix}_${encodeTime(ms)}${suffix}`
}
