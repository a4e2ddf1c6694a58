import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { WorkOSStandIn } from "../src/index.ts"

// One stand-in for the quirks of the query; those that need time or appended
// events start their own.
let standIn: WorkOSStandIn.StandIn
let all: Array<string>

beforeAll(async () => {
  standIn = await WorkOSStandIn.start({ events: 400 })
  all = standIn.events().map((event) => event.id)
})
afterAll(() => standIn.close())
afterEach(() => {
  Object.assign(standIn.quirks, WorkOSStandIn.noQuirks)
})

const get = async (on: WorkOSStandIn.StandIn, query: string) => {
  const response = await fetch(`${on.url}/events${query}`, {
    headers: { authorization: `Bearer ${on.apiKey}` }
  })
  return { status: response.status, body: (await response.json()) as any }
}

/** The ids of one page, after checking it is a 200. */
const page = async (on: WorkOSStandIn.StandIn, query: string) => {
  const { status, body } = await get(on, query)
  expect(status, query).toBe(200)
  return {
    ids: body.data.map((event: any) => event.id) as Array<string>,
    after: body.list_metadata.after as string | null
  }
}

const idsOf = (events: ReadonlyArray<WorkOSStandIn.RawEvent>) => events.map((event) => event.id)

describe("WorkOSStandIn quirks", () => {
  it("are all off by default", () => {
    expect(standIn.quirks).toEqual(WorkOSStandIn.noQuirks)
  })

  it("ignoreOrder: always oldest first, whatever order is asked", async () => {
    standIn.quirks.ignoreOrder = true
    for (const order of ["desc", "normal", "asc"]) {
      expect((await page(standIn, `?order=${order}&limit=5`)).ids, order).toEqual(all.slice(0, 5))
      expect((await page(standIn, `?order=${order}&limit=5&after=${all[200]}`)).ids).toEqual(
        all.slice(201, 206)
      )
    }
    // The default order (desc) too: "the newest event now" cannot be found this way.
    expect((await page(standIn, "?limit=1")).ids).toEqual([all[0]])
  })

  it("ignoreRange: range_start and range_end are not applied", async () => {
    const events = standIn.events()
    const range = `range_start=${events[100]!.created_at}&range_end=${events[110]!.created_at}`
    expect((await page(standIn, `?order=asc&limit=20&${range}`)).ids).toEqual(all.slice(100, 110))
    standIn.quirks.ignoreRange = true
    expect((await page(standIn, `?order=asc&limit=20&${range}`)).ids).toEqual(all.slice(0, 20))
  })

  it("rangeWithoutAfter: the range is dropped when a cursor is given", async () => {
    const events = standIn.events()
    const range = `range_start=${events[100]!.created_at}&range_end=${events[110]!.created_at}`
    standIn.quirks.rangeWithoutAfter = true
    expect((await page(standIn, `?order=asc&limit=20&${range}`)).ids).toEqual(all.slice(100, 110))
    expect((await page(standIn, `?order=asc&limit=20&${range}&after=${all[105]}`)).ids).toEqual(
      all.slice(106, 126)
    )
    expect((await page(standIn, `?order=asc&limit=20&${range}&before=${all[105]}`)).ids).toEqual(
      all.slice(85, 105)
    )
  })

  it("eventsFilterStyle brackets: reads only events[]=, ignores events=a,b", async () => {
    const types = ["dsync.user.created", "user.created"]
    const expected = idsOf(standIn.events().filter((event) => types.includes(event.event)))
    const brackets = types.map((type) => `events[]=${type}`).join("&")
    const comma = `events=${types.join(",")}`
    // The spec's style: the comma list filters, brackets are an unknown parameter.
    expect((await page(standIn, `?order=asc&limit=20&${comma}`)).ids).toEqual(expected)
    expect((await page(standIn, `?order=asc&limit=20&${brackets}`)).ids).toEqual(all.slice(0, 20))
    standIn.quirks.eventsFilterStyle = "brackets"
    expect((await page(standIn, `?order=asc&limit=20&${brackets}`)).ids).toEqual(expected)
    expect((await page(standIn, `?order=asc&limit=20&${encodeURI(brackets)}`)).ids).toEqual(
      expected
    )
    expect((await page(standIn, `?order=asc&limit=20&${comma}`)).ids).toEqual(all.slice(0, 20))
    // Names are still checked, one per parameter.
    const refused = await get(standIn, "?events[]=user.created&events[]=no.such.type")
    expect(refused.status).toBe(422)
    expect(refused.body.errors).toEqual([{ code: "invalid_event_type", field: "events" }])
  })

  it("filterAfterLimit with a quirk set at start", async () => {
    const local = await WorkOSStandIn.start({ events: 300, quirks: { filterAfterLimit: true } })
    try {
      expect(local.quirks).toEqual({ ...WorkOSStandIn.noQuirks, filterAfterLimit: true })
      const ids = idsOf(local.events())
      const userCreated = idsOf(local.events().filter((event) => event.event === "user.created"))
      const first = await page(local, "?order=asc&limit=100&events=user.created")
      expect(first.ids).toEqual(userCreated.filter((id) => id <= ids[99]!))
      expect(first.after).toBe(ids[99])
    } finally {
      await local.close()
    }
  })
})
