import { createServer, type IncomingMessage, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { FetchHttpClient } from "effect/http"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as RequestBudget from "../src/RequestBudget.ts"
import { defaults } from "../src/WorkOS.ts"
import * as WorkOSList from "../src/WorkOSList.ts"

// A plain HTTP server answering list pages as the spec says, with failures on demand.
const users = Array.from({ length: 250 }, (_, i) => ({
  object: "user",
  id: `user_${String(i).padStart(4, "0")}`,
  email: `u${i}@x.com`,
  extra_field: i
}))
const requests: Array<string> = []
let failNext: Array<{ status: number; body: string; headers?: Record<string, string> }> = []
let server: Server
let base = ""

const answer = (req: IncomingMessage) => {
  const url = new URL(req.url!, "http://x")
  requests.push(`${url.pathname}${url.search}`)
  const fail = failNext.shift()
  if (fail !== undefined) return fail
  if (req.headers.authorization !== "Bearer sk_test")
    return { status: 401, body: '{"message":"Unauthorized"}' }
  if (url.pathname === "/bad") return { status: 200, body: "[]" }
  if (url.pathname === "/directory_users") {
    return {
      status: 200,
      body: JSON.stringify({ data: [{ object: "user", id: "x" }], list_metadata: {} })
    }
  }
  const limit = Number(url.searchParams.get("limit"))
  const after = url.searchParams.get("after")
  const start = after === null ? 0 : users.findIndex((u) => u.id === after) + 1
  const data = users.slice(start, start + limit)
  const more = start + limit < users.length
  return {
    status: 200,
    body: JSON.stringify({
      data,
      list_metadata: { before: null, after: more ? data.at(-1)!.id : null }
    })
  }
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const { status, body, headers } = answer(req) as ReturnType<typeof answer> & {
      headers?: Record<string, string>
    }
    res.writeHead(status, { "content-type": "application/json", ...headers }).end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

const lists = (apiKey = "sk_test") =>
  WorkOSList.make({
    ...defaults,
    baseUrl: base,
    apiKey: Redacted.make(apiKey),
    retry: { ...defaults.retry, times: 3, baseDelay: "5 millis" }
  }).pipe(Effect.provide(FetchHttpClient.layer))

describe("WorkOSList", () => {
  it.live("reads every page of a list, 100 at a time, objects as sent", () =>
    Effect.gen(function* () {
      requests.length = 0
      const l = yield* lists()
      const all = yield* Stream.runCollect(l.all("users", { organization_id: "org_1" }))
      expect(all.map((u) => u.id)).toEqual(users.map((u) => u.id))
      expect(all[7]).toEqual(users[7])
      expect(requests).toEqual([
        "/user_management/users?limit=100&organization_id=org_1",
        "/user_management/users?limit=100&after=user_0099&organization_id=org_1",
        "/user_management/users?limit=100&after=user_0199&organization_id=org_1"
      ])
    })
  )

  it.live("retries a transient failure; a refusal is a WorkOSApiError with WorkOS's message", () =>
    Effect.gen(function* () {
      failNext = [{ status: 503, body: "busy" }]
      const l = yield* lists()
      const page = yield* l.page("users", { limit: 5 })
      expect(page.data).toHaveLength(5)
      expect(page.after).toBe("user_0004")
      const refused = yield* Effect.flip((yield* lists("sk_wrong")).page("users"))
      expect(refused._tag).toBe("WorkOSApiError")
      expect(refused.message).toContain("GET /user_management/users with 401")
      expect(refused.message).toContain("Unauthorized")
    })
  )

  it.live("says where a page is not a list of the resource's objects", () =>
    Effect.gen(function* () {
      const l = yield* lists()
      const error = yield* Effect.flip(l.page("directory_users", { filters: { directory: "d" } }))
      expect(error.message).toContain('data[0].object is "user", not "directory_user"')
    })
  )

  it.live("every attempt takes a slot of the request budget given; a 429 throttles it", () =>
    Effect.gen(function* () {
      requests.length = 0
      failNext = [{ status: 429, body: '{"message":"slow down"}', headers: { "retry-after": "0" } }]
      const budget = RequestBudget.make({ maxPerMinute: 60_000 })
      const l = yield* WorkOSList.make({
        ...defaults,
        baseUrl: base,
        apiKey: Redacted.make("sk_test"),
        retry: { ...defaults.retry, times: 3, baseDelay: "5 millis" },
        budget
      }).pipe(Effect.provide(FetchHttpClient.layer))
      const all = yield* Stream.runCollect(l.all("users"))
      expect(all).toHaveLength(users.length)
      // Three pages and the retry of the one refused with 429.
      expect(requests).toHaveLength(4)
      expect(budget.stats().requests).toBe(4)
      expect(budget.stats().throttled).toBe(1)
    })
  )
})
