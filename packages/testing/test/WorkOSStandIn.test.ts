import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Event, EventList } from "@workos-relay/core"
import * as Result from "effect/Result"
import { WorkOSStandIn } from "../src/index.ts"

let standIn: WorkOSStandIn.StandIn

beforeAll(async () => {
  standIn = await WorkOSStandIn.start({ events: 1000 })
})
afterAll(() => standIn.close())

const get = async (query: string, apiKey: string | null = standIn.apiKey) => {
  const response = await fetch(`${standIn.url}/events${query}`, {
    headers: apiKey === null ? {} : { authorization: `Bearer ${apiKey}` }
  })
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as any
  }
}

const ids = (body: any): Array<string> => body.data.map((event: any) => event.id)

/** Every event a walk gives, following `list_metadata.after`. */
const walk = async (query: string): Promise<Array<any>> => {
  const events: Array<any> = []
  let after: string | null = null
  do {
    const { status, body } = await get(`${query}${after === null ? "" : `&after=${after}`}`)
    expect(status).toBe(200)
    events.push(...body.data)
    after = body.list_metadata.after
  } while (after !== null)
  return events
}

describe("WorkOSStandIn", () => {
  it("listens on 127.0.0.1 with a port of its own", () => {
    expect(standIn.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
  })

  it("is seeded with valid events of every type, with fresh ids in creation order", () => {
    const events = standIn.events()
    expect(events.length).toBe(1000)
    expect(new Set(events.map((e) => e.event))).toEqual(new Set(Event.eventTypes))
    for (const event of events)
      expect(Result.isSuccess(Event.decode(event)), event.event).toBe(true)
    const sorted = [...events.map((e) => e.id)].sort()
    expect(events.map((e) => e.id)).toEqual(sorted)
    expect(new Set(sorted).size).toBe(events.length)
    const times = events.map((e) => Date.parse(e.created_at))
    expect(times).toEqual([...times].sort((a, b) => a - b))
    expect(new Set(times).size).toBe(events.length)
    expect(Math.max(...times)).toBeLessThan(Date.now())
    // Payload ids vary too, not only event ids.
    const directoryUsers = events.filter((e) => e.event === "dsync.user.created")
    expect(new Set(directoryUsers.map((e: any) => e.data.id)).size).toBe(directoryUsers.length)
  })

  it("answers 401 without the right bearer token", async () => {
    for (const key of [null, "sk_test_wrong"]) {
      const { status, body } = await get("", key)
      expect(status).toBe(401)
      expect(body.message).toMatch(/API key/)
    }
  })

  it("answers a page WorkOS's way, 10 newest first by default", async () => {
    const { status, body } = await get("")
    expect(status).toBe(200)
    const page = EventList.decodeUnknown(body)
    expect(Result.isSuccess(page)).toBe(true)
    expect(ids(body)).toEqual(
      standIn
        .events()
        .slice(-10)
        .map((e) => e.id)
        .reverse()
    )
    expect(body.list_metadata.after).toBe(ids(body)[9])
  })

  it("pages through everything in ascending order, each event once", async () => {
    const events = await walk("?order=asc&limit=100")
    expect(events.map((e) => e.id)).toEqual(standIn.events().map((e) => e.id))
  })

  it("pages through everything in descending order, each event once", async () => {
    const events = await walk("?order=desc&limit=37")
    expect(events.map((e) => e.id)).toEqual(
      standIn
        .events()
        .map((e) => e.id)
        .reverse()
    )
  })

  it("takes `before` and `normal` order as the spec describes them", async () => {
    const all = standIn.events().map((e) => e.id)
    const pivot = all[500]!
    expect(ids((await get(`?order=asc&limit=3&before=${pivot}`)).body)).toEqual(all.slice(497, 500))
    expect(ids((await get(`?order=desc&limit=3&before=${pivot}`)).body)).toEqual(
      all.slice(501, 504).reverse()
    )
    // normal: descending, but `after` fetches newer records and `before` older ones.
    expect(ids((await get(`?order=normal&limit=3&after=${pivot}`)).body)).toEqual(
      all.slice(501, 504).reverse()
    )
    expect(ids((await get(`?order=normal&limit=3&before=${pivot}`)).body)).toEqual(
      all.slice(497, 500).reverse()
    )
  })

  it("filters by a comma-separated list of types, encoded or not", async () => {
    const types = ["dsync.user.created", "user.created"]
    const expected = standIn
      .events()
      .filter((e) => types.includes(e.event))
      .map((e) => e.id)
    expect(expected.length).toBeGreaterThan(10)
    for (const events of [types.join(","), encodeURIComponent(types.join(","))]) {
      const found = await walk(`?order=asc&limit=5&events=${events}`)
      expect(found.map((e) => e.id)).toEqual(expected)
    }
  })

  it("filters by organization and by creation time", async () => {
    const organization = standIn.organizations[1]!
    const all = standIn.events()
    const ofOrganization = await walk(`?order=asc&limit=100&organization_id=${organization}`)
    expect(ofOrganization.length).toBeGreaterThan(100)
    for (const event of ofOrganization) {
      const data = event.data as any
      expect(data.organization_id ?? data.id).toBe(organization)
    }
    const start = all[100]!.created_at
    const end = all[200]!.created_at
    const inRange = await walk(`?order=asc&limit=100&range_start=${start}&range_end=${end}`)
    expect(inRange.map((e) => e.id)).toEqual(all.slice(100, 200).map((e) => e.id))
  })

  it("refuses bad parameters with 422 and WorkOS's error body", async () => {
    for (const [query, field] of [
      ["?limit=0", "limit"],
      ["?limit=101", "limit"],
      ["?limit=ten", "limit"],
      ["?order=sideways", "order"],
      ["?events=dsync.user.created,no.such.type", "events"],
      ["?range_start=yesterday", "range_start"],
      ["?after=not-an-id", "after"]
    ] as const) {
      const { status, body } = await get(query)
      expect(status, query).toBe(422)
      expect(body.message.length).toBeGreaterThan(0)
      expect(body.errors).toEqual([{ code: expect.any(String), field }])
    }
  })

  it("refuses an unknown organization and a double cursor with 400", async () => {
    const unknown = await get("?organization_id=org_01NOSUCHORGANIZATION00000")
    expect(unknown).toMatchObject({ status: 400, body: { code: "organization_not_found" } })
    expect(unknown.body.message).toContain("org_01NOSUCHORGANIZATION00000")
    const [a, b] = standIn.events().map((e) => e.id)
    expect((await get(`?after=${a}&before=${b}`)).status).toBe(400)
  })

  it("serves events appended while it runs, after the others", async () => {
    const local = await WorkOSStandIn.start({ events: 5 })
    try {
      const last = local.events()[4]!.id
      const appended = local.append([
        WorkOSStandIn.brokenEvent(),
        WorkOSStandIn.unknownTypeEvent(),
        { event: "user.created" }
      ])
      local.appendGenerated(2)
      const response = await fetch(`${local.url}/events?order=asc&after=${last}`, {
        headers: { authorization: `Bearer ${local.apiKey}` }
      })
      const page = Result.getOrThrow(EventList.decodeJson(await response.text()))
      expect(page.data.length).toBe(5)
      expect(page.list_metadata.after).toBeNull()
      const [broken, unknownType, known] = page.data
      expect(Result.isFailure(broken!)).toBe(true)
      expect(Result.getOrThrow(unknownType!)).toMatchObject({ event: "widget.assembled" })
      expect(Event.isKnown(Result.getOrThrow(unknownType!))).toBe(false)
      expect(Result.getOrThrow(known!).id).toBe(appended[2]!.id)
      expect(appended[0]!.id > last).toBe(true)
    } finally {
      await local.close()
    }
  })

  it("serves queued faults, one per request, then answers normally", async () => {
    standIn.faults.next(
      { status: 429, retryAfter: 7 },
      { status: 503 },
      { malformedJson: true },
      { delay: 150 }
    )
    expect(standIn.faults.pending()).toBe(4)
    const limited = await get("")
    expect(limited.status).toBe(429)
    expect(limited.headers.get("retry-after")).toBe("7")
    expect((await get("")).status).toBe(503)
    const malformed = await fetch(`${standIn.url}/events`, {
      headers: { authorization: `Bearer ${standIn.apiKey}` }
    })
    expect(malformed.status).toBe(200)
    await expect(malformed.json()).rejects.toThrow()
    const started = Date.now()
    expect((await get("")).status).toBe(200)
    expect(Date.now() - started).toBeGreaterThanOrEqual(140)
    expect((await get("")).status).toBe(200)
    expect(standIn.faults.pending()).toBe(0)
  })

  it("can cut the connection", async () => {
    standIn.faults.next({ disconnect: true })
    await expect(get("")).rejects.toThrow()
    expect((await get("")).status).toBe(200)
  })

  it("records every request", async () => {
    const before = standIn.requests.length
    await get("?order=asc&events=user.created,user.updated")
    const request = standIn.requests[before]!
    expect(request.url.searchParams.get("events")).toBe("user.created,user.updated")
    expect(request.headers.authorization).toBe(`Bearer ${standIn.apiKey}`)
  })

  it("quirk: can ignore the events filter, or filter after the limit", async () => {
    const local = await WorkOSStandIn.start({ events: 300 })
    try {
      local.quirks.ignoreEventsFilter = true
      const auth = { authorization: `Bearer ${local.apiKey}` }
      const ignored: any = await (
        await fetch(`${local.url}/events?order=asc&limit=20&events=user.created`, { headers: auth })
      ).json()
      expect(ignored.data.length).toBe(20)
      local.quirks.ignoreEventsFilter = false
      local.quirks.filterAfterLimit = true
      const short: any = await (
        await fetch(`${local.url}/events?order=asc&limit=20&events=user.created`, { headers: auth })
      ).json()
      expect(short.data.length).toBeLessThanOrEqual(1)
      expect(short.list_metadata.after).toBe(local.events()[19]!.id)
    } finally {
      await local.close()
    }
  })
})

describe("WorkOSStandIn network", () => {
  it("answers after its latency, plus jitter", async () => {
    const slow = await WorkOSStandIn.start({
      events: 5,
      network: { latencyMs: 120, jitterMs: 40 }
    })
    try {
      const started = performance.now()
      const response = await fetch(`${slow.url}/events?limit=1`, {
        headers: { authorization: `Bearer ${slow.apiKey}` }
      })
      expect(response.status).toBe(200)
      expect(performance.now() - started).toBeGreaterThanOrEqual(115)
      slow.network.latencyMs = 0
      slow.network.jitterMs = 0
    } finally {
      await slow.close()
    }
  })

  it("rate-limits with 429 and Retry-After past its window, and lets requests through again later", async () => {
    const limited = await WorkOSStandIn.start({
      events: 5,
      network: { rateLimit: { requests: 3, windowMs: 1000 } }
    })
    try {
      const get = () =>
        fetch(`${limited.url}/events?limit=1`, {
          headers: { authorization: `Bearer ${limited.apiKey}` }
        })
      const statuses: Array<number> = []
      for (let i = 0; i < 5; i++) statuses.push((await get()).status)
      expect(statuses).toEqual([200, 200, 200, 429, 429])
      const refused = await get()
      expect(refused.status).toBe(429)
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
      expect(((await refused.json()) as any).code).toBe("rate_limit_exceeded")
      expect(limited.throttled()).toBe(3)
      await new Promise((r) => setTimeout(r, 1050))
      expect((await get()).status).toBe(200)
    } finally {
      await limited.close()
    }
  })

  it("seeds over the span asked, or at the times asked", async () => {
    const month = await WorkOSStandIn.start({ events: 100, seedSpanMs: 30 * 24 * 3600_000 })
    const same = await WorkOSStandIn.start({
      events: 10,
      seedTimes: (i) => 1_700_000_000_000 + Math.floor(i / 5) * 1000
    })
    try {
      const events = month.events()
      const span = Date.parse(events.at(-1)!.created_at) - Date.parse(events[0]!.created_at)
      expect(span).toBeGreaterThan(29 * 24 * 3600_000)
      const times = same.events().map((e) => e.created_at)
      expect(new Set(times).size).toBe(2)
      expect(times[0]).toBe(times[4])
    } finally {
      await month.close()
      await same.close()
    }
  })
})
