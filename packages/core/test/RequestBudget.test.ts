import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import { WorkOSStandIn } from "../../testing/src/index.ts"
import { RequestBudget, WorkOS } from "../src/index.ts"

describe("RequestBudget", () => {
  it("paces requests evenly at the rate, after a burst of a second's worth", () => {
    const budget = RequestBudget.make({ maxPerMinute: 600 }) // 10/s: one every 100 ms
    const t = 1_000_000
    // A burst of 10 goes at once after a quiet spell; the 11th waits one interval.
    const waits = Array.from({ length: 13 }, () => budget.reserve(t))
    expect(waits.slice(0, 10)).toEqual(Array(10).fill(0))
    expect(waits[10]).toBe(100)
    expect(waits[11]).toBe(200)
    expect(waits[12]).toBe(300)
    expect(budget.stats().requests).toBe(13)
  })

  it("a 429 pauses everyone for Retry-After and halves the rate, which recovers", () => {
    const budget = RequestBudget.make({ maxPerMinute: 600, burst: 1, recoveryMs: 10_000 })
    const t = 2_000_000
    expect(budget.reserve(t)).toBe(0)
    budget.throttle(3_000, t)
    // Nobody goes before the pause ends; then at half the rate (one every 200 ms).
    expect(budget.reserve(t)).toBe(3_000)
    expect(budget.reserve(t)).toBe(3_200)
    // Long after: the full rate again.
    const later = t + 60_000
    expect(budget.reserve(later)).toBe(0)
    expect(budget.reserve(later)).toBe(100)
    expect(budget.stats().throttled).toBe(1)
  })

  it("a 429 without Retry-After pauses for a second", () => {
    const budget = RequestBudget.make({ maxPerMinute: 6000, burst: 1 })
    budget.throttle(undefined, 0)
    expect(budget.reserve(0)).toBe(1000)
  })

  it("is one per API key in a process, and the strictest rate wins", () => {
    const a = RequestBudget.forKey("sk_test_shared", "https://api.example", { maxPerMinute: 3000 })
    const b = RequestBudget.forKey("sk_test_shared", "https://api.example", { maxPerMinute: 1200 })
    const other = RequestBudget.forKey("sk_test_other", "https://api.example")
    expect(b).toBe(a)
    expect(a.maxPerMinute).toBe(1200)
    expect(other).not.toBe(a)
    expect(() => RequestBudget.make({ maxPerMinute: 0 })).toThrow(/positive/)
  })
})

describe("RequestBudget in the WorkOS client", () => {
  let standIn: WorkOSStandIn.StandIn
  beforeAll(async () => {
    standIn = await WorkOSStandIn.start({ events: 50 })
  })
  afterAll(() => standIn.close())

  const client = (budget: RequestBudget.RequestBudget) =>
    WorkOS.makeNode({
      apiKey: Redacted.make(standIn.apiKey),
      baseUrl: standIn.url,
      timeout: "5 seconds",
      retry: {
        times: 20,
        baseDelay: "5 millis",
        maxDelay: "50 millis",
        maxRetryAfter: "5 seconds"
      },
      budget
    })

  it.live("in a 429 storm every request gets through and the budget backs off for everyone", () =>
    Effect.gen(function* () {
      // A server that takes 5 requests a second; the budget thinks 20 a second is fine.
      standIn.network.rateLimit = { requests: 5, windowMs: 1000 }
      const budget = RequestBudget.make({ maxPerMinute: 1200, recoveryMs: 5_000 })
      const workos = yield* client(budget)
      const before = standIn.requests.length
      const throttledBefore = standIn.throttled()
      const pages = yield* Effect.forEach(
        Array.from({ length: 24 }, (_, i) => i),
        () => workos.listEvents({ limit: 2, order: "asc" }),
        { concurrency: 8 }
      )
      standIn.network.rateLimit = undefined
      expect(pages.every((p) => p.data.length === 2 && p.data.every(Result.isSuccess))).toBe(true)
      const throttled = standIn.throttled() - throttledBefore
      expect(throttled).toBeGreaterThan(0)
      expect(budget.stats().throttled).toBe(throttled)
      // The storm subsides: far fewer 429s than successes (each one paused everyone).
      expect(throttled).toBeLessThan(24)
      // Every request the server saw is one of the 24 or a retry of a 429: nothing else.
      expect(standIn.requests.length - before).toBe(24 + throttled)
    })
  )
})
