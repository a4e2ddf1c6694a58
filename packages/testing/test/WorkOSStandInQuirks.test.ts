import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { Event, EventList } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import * as Result from "effect/Result"
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

/** What a decode failed with (undefined if it did not). */
const failureOf = <A, E>(result: Result.Result<A, E>): E | undefined =>
  Result.isFailure(result) ? result.failure : undefined

const idsOf = (events: ReadonlyArray<WorkOSStandIn.RawEvent>) => events.map((event) => event.id)

/** Every id a walk gives, following `list_metadata.after`. */
const walk = async (on: WorkOSStandIn.StandIn, query: string): Promise<Array<string>> => {
  const ids: Array<string> = []
  let after: string | null = null
  do {
    const next = await page(on, `${query}${after === null ? "" : `&after=${after}`}`)
    ids.push(...next.ids)
    after = next.after
  } while (after !== null)
  return ids
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** An id the stand-in never made, sorting between `id` and the next event's (made a while later). */
const ghostAfter = (id: string) => `${id.slice(0, "event_".length + 10)}${"Z".repeat(16)}`

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

  it("unknownAfterFromOldest: a cursor it does not hold restarts from the oldest, silently", async () => {
    const ghost = ghostAfter(all[200]!)
    expect(ghost > all[200]! && ghost < all[201]!).toBe(true)
    expect(all).not.toContain(ghost)
    const events = standIn.events()
    const userCreated = idsOf(events.filter((event) => event.event === "user.created"))
    const otherType = events.find((event) => event.event === "dsync.user.created")!.id
    const organization = standIn.organizations[0]!
    const ofOrganization = idsOf(
      events.filter((event: any) => (event.data.organization_id ?? event.data.id) === organization)
    )
    const otherOrganization = events.find(
      (event: any) => event.data.organization_id === standIn.organizations[1]
    )!.id

    // Off: an unknown cursor works by id comparison.
    expect((await page(standIn, `?order=asc&limit=5&after=${ghost}`)).ids).toEqual(
      all.slice(201, 206)
    )
    expect(
      (await page(standIn, `?order=asc&limit=100&events=user.created&after=${otherType}`)).ids
    ).toEqual(userCreated.filter((id) => id > otherType))

    standIn.quirks.unknownAfterFromOldest = true
    expect((await page(standIn, `?order=asc&limit=5&after=${ghost}`)).ids).toEqual(all.slice(0, 5))
    expect(
      (await page(standIn, `?order=asc&limit=100&events=user.created&after=${otherType}`)).ids
    ).toEqual(userCreated)
    expect(
      (
        await page(
          standIn,
          `?order=asc&limit=5&organization_id=${organization}&after=${otherOrganization}`
        )
      ).ids
    ).toEqual(ofOrganization.slice(0, 5))
    // A cursor it holds, of an event the filter lets through, goes on as usual.
    expect((await page(standIn, `?order=asc&limit=5&after=${all[200]}`)).ids).toEqual(
      all.slice(201, 206)
    )
    expect(
      (await page(standIn, `?order=asc&limit=100&events=user.created&after=${userCreated[0]}`)).ids
    ).toEqual(userCreated.slice(1))
  })

  it("retentionMs: older events are gone, and as cursors unknown", async () => {
    const local = await WorkOSStandIn.start({ events: 100 })
    try {
      const events = local.events()
      // The cut halfway between the 50th and 51st events (seeded about 100 minutes apart).
      const cut = (Date.parse(events[49]!.created_at) + Date.parse(events[50]!.created_at)) / 2
      local.quirks.retentionMs = Date.now() - cut
      const kept = idsOf(events.slice(50))
      const gone = idsOf(events.slice(0, 50))
      expect(await walk(local, "?order=asc&limit=7")).toEqual(kept)
      expect(await walk(local, "?order=desc&limit=7")).toEqual([...kept].reverse())
      // A gone cursor, by id comparison: ascending goes on from the oldest kept,
      // descending finds nothing older.
      const cursor = gone[10]!
      expect((await page(local, `?order=asc&limit=3&after=${cursor}`)).ids).toEqual(
        kept.slice(0, 3)
      )
      expect(await page(local, `?order=desc&limit=3&after=${cursor}`)).toEqual({
        ids: [],
        after: null
      })
      // Unknown cursors restart: descending from the newest.
      local.quirks.unknownAfterFromOldest = true
      expect((await page(local, `?order=desc&limit=3&after=${cursor}`)).ids).toEqual(
        kept.slice(-3).reverse()
      )
      // Retention off again: everything is back (the stand-in only hides them).
      local.quirks.retentionMs = undefined
      expect(await walk(local, "?order=asc&limit=100")).toEqual(idsOf(events))
    } finally {
      await local.close()
    }
  })

  it("visibilityDelayMs: an event is served only once that long after its creation", async () => {
    const local = await WorkOSStandIn.start({ events: 5, quirks: { visibilityDelayMs: 400 } })
    try {
      const seeded = idsOf(local.events())
      const appended = idsOf(local.appendGenerated(3))
      expect(await page(local, `?order=asc&after=${seeded[4]}`)).toEqual({ ids: [], after: null })
      expect((await page(local, "?order=desc&limit=1")).ids).toEqual([seeded[4]])
      expect(await walk(local, "?order=asc&limit=2")).toEqual(seeded)
      await sleep(450)
      expect((await page(local, `?order=asc&after=${seeded[4]}`)).ids).toEqual(appended)
      expect((await page(local, "?order=desc&limit=1")).ids).toEqual([appended[2]])
    } finally {
      await local.close()
    }
  })

  it("outOfOrderCommits: an older event becomes visible after a newer one was served", async () => {
    const delay = 1000
    const local = await WorkOSStandIn.start({
      events: 5,
      quirks: { visibilityDelayMs: delay, outOfOrderCommits: true }
    })
    try {
      const start = idsOf(local.events())[4]!
      const appended = idsOf(local.appendGenerated(12))
      const deadline = Date.now() + delay + 1000
      // Two readers: one that re-reads everything after `start`, and a naive tailer
      // that pages `after` the newest id it has seen.
      const firstSeen: Array<string> = []
      let lateOlder: { id: string; newerServedBefore: string } | undefined
      const tailed: Array<string> = []
      let tail = start
      while (firstSeen.length < appended.length && Date.now() < deadline) {
        const visible = (await page(local, `?order=asc&limit=100&after=${start}`)).ids
        // What is visible is always a subset of the appended, in id order.
        expect(visible).toEqual(appended.filter((id) => visible.includes(id)))
        for (const id of visible) {
          if (firstSeen.includes(id)) continue
          const newer = firstSeen.find((seen) => seen > id)
          if (newer !== undefined) lateOlder ??= { id, newerServedBefore: newer }
          firstSeen.push(id)
        }
        const tailPage = (await page(local, `?order=asc&limit=100&after=${tail}`)).ids
        tailed.push(...tailPage)
        tail = tailPage.at(-1) ?? tail
        await sleep(20)
      }
      expect([...firstSeen].sort()).toEqual(appended)
      expect(firstSeen).not.toEqual(appended)
      expect(lateOlder).toBeDefined()
      expect(lateOlder!.id < lateOlder!.newerServedBefore).toBe(true)
      // The tailer saw no event twice, in id order, and missed the late ones for good.
      expect(tailed).toEqual([...new Set(tailed)].sort())
      // (With seed 1 the first appended becomes visible ~450 ms after the second.)
      const missed = appended.filter((id) => !tailed.includes(id))
      expect(missed.length).toBeGreaterThan(0)
      for (const id of missed) expect(id < tail).toBe(true)
      expect((await page(local, `?order=asc&limit=100&after=${tail}`)).ids).toEqual([])
      // Once the delay has passed, everything is served in id order.
      expect((await page(local, `?order=asc&limit=100&after=${start}`)).ids).toEqual(appended)
    } finally {
      await local.close()
    }
  })

  it("afterBackwards: list_metadata.after is the first event of the page", async () => {
    standIn.quirks.afterBackwards = true
    expect(await page(standIn, "?order=asc&limit=5")).toEqual({
      ids: all.slice(0, 5),
      after: all[0]
    })
    // Following it serves all but one of the page again.
    expect(await page(standIn, `?order=asc&limit=5&after=${all[0]}`)).toEqual({
      ids: all.slice(1, 6),
      after: all[1]
    })
    expect(await page(standIn, `?order=desc&limit=5&after=${all[300]}`)).toEqual({
      ids: all.slice(295, 300).reverse(),
      after: all[299]
    })
    // The last page still ends the walk.
    expect(await page(standIn, `?order=asc&limit=5&after=${all[396]}`)).toEqual({
      ids: all.slice(397),
      after: null
    })
  })

  it("stuckAfter: list_metadata.after repeats the request's own after", async () => {
    standIn.quirks.stuckAfter = true
    // The first page, without a cursor, points on as usual.
    expect(await page(standIn, "?order=asc&limit=5")).toEqual({
      ids: all.slice(0, 5),
      after: all[4]
    })
    for (let i = 0; i < 2; i++) {
      expect(await page(standIn, `?order=asc&limit=5&after=${all[4]}`)).toEqual({
        ids: all.slice(5, 10),
        after: all[4]
      })
    }
    expect(await page(standIn, `?order=asc&limit=5&after=${all[396]}`)).toEqual({
      ids: all.slice(397),
      after: null
    })
    // With afterBackwards too, the first page points backwards, the others are stuck.
    standIn.quirks.afterBackwards = true
    expect((await page(standIn, "?order=asc&limit=5")).after).toBe(all[0])
    expect((await page(standIn, `?order=asc&limit=5&after=${all[4]}`)).after).toBe(all[4])
  })

  it("repeatLastEvent: the last page ends with the event the cursor named", async () => {
    standIn.quirks.repeatLastEvent = true
    expect(await page(standIn, `?order=asc&limit=5&after=${all[396]}`)).toEqual({
      ids: [...all.slice(397), all[396]],
      after: null
    })
    // Caught up: an empty last page serves the cursor's event again.
    expect(await page(standIn, `?order=asc&limit=5&after=${all[399]}`)).toEqual({
      ids: [all[399]],
      after: null
    })
    expect(await page(standIn, `?order=desc&limit=5&after=${all[2]}`)).toEqual({
      ids: [all[1], all[0], all[2]],
      after: null
    })
    // Not on a page that points on, nor without a cursor, nor for a cursor it does not hold.
    expect(await page(standIn, `?order=asc&limit=5&after=${all[100]}`)).toEqual({
      ids: all.slice(101, 106),
      after: all[105]
    })
    expect(
      (
        await page(
          standIn,
          "?order=asc&limit=100&range_start=2000-01-01T00:00:00Z&range_end=2000-01-02T00:00:00Z"
        )
      ).ids
    ).toEqual([])
    expect((await page(standIn, `?order=asc&limit=5&after=${ghostAfter(all[399]!)}`)).ids).toEqual(
      []
    )
  })

  it("counts how many times each event was served", async () => {
    const local = await WorkOSStandIn.start({ events: 30 })
    try {
      const ids = idsOf(local.events())
      expect(local.served.size).toBe(0)
      expect(await walk(local, "?order=asc&limit=7")).toEqual(ids)
      expect(ids.map((id) => local.served.get(id))).toEqual(ids.map(() => 1))
      local.quirks.repeatLastEvent = true
      await page(local, `?order=asc&after=${ids[29]}`)
      expect(local.served.get(ids[29]!)).toBe(2)
      expect(local.served.get(ids[28]!)).toBe(1)
      expect(local.served.size).toBe(30)
    } finally {
      await local.close()
    }
  })

  it("hostile: every quirk on at once, set at start", async () => {
    for (const [name, value] of Object.entries(WorkOSStandIn.hostile)) {
      expect(value, name).not.toBe((WorkOSStandIn.noQuirks as any)[name])
      expect(value, name).toBeTruthy()
    }
    expect(Object.keys(WorkOSStandIn.hostile).sort()).toEqual(
      Object.keys(WorkOSStandIn.noQuirks).sort()
    )
    const local = await WorkOSStandIn.start({ events: 300, quirks: WorkOSStandIn.hostile })
    try {
      expect(local.quirks).toEqual(WorkOSStandIn.hostile)
      const ids = idsOf(local.events())
      // order and the comma filter ignored; the week's seeds kept; after points backwards.
      expect(await page(local, "?order=desc&limit=5&events=user.created")).toEqual({
        ids: ids.slice(0, 5),
        after: ids[0]
      })
      // Then stuck on the request's own cursor.
      expect(await page(local, `?limit=5&after=${ids[10]}`)).toEqual({
        ids: ids.slice(11, 16),
        after: ids[10]
      })
      // An unknown cursor restarts from the oldest, whatever the range.
      expect(
        (
          await page(
            local,
            `?limit=5&after=${ghostAfter(ids[10]!)}&range_start=${new Date().toISOString()}`
          )
        ).ids
      ).toEqual(ids.slice(0, 5))
      // The last page repeats the cursor's event; new events are not visible yet.
      const appended = idsOf(local.appendGenerated(3))
      expect(await page(local, `?limit=5&after=${ids[299]}`)).toEqual({
        ids: [ids[299]],
        after: null
      })
      expect(appended.every((id) => !local.served.has(id))).toBe(true)
      // Drifted events only when asked.
      expect(local.events().every((event) => Result.isSuccess(Event.decode(event)))).toBe(true)
      local.quirks.visibilityDelayMs = 0
      expect((await page(local, `?limit=5&after=${ids[299]}`)).ids).toEqual([...appended, ids[299]])
    } finally {
      await local.close()
    }
  })

  it("drifted events: known types whose payloads break the spec, none decodes", async () => {
    const byDrift = (drift: WorkOSStandIn.Drift) =>
      WorkOSStandIn.driftCases.filter((c) => c.drift === drift).map((c) => c.type)
    expect(byDrift("missingResourceTypeSlug").sort()).toEqual([
      "organization_role.created",
      "organization_role.deleted",
      "organization_role.updated",
      "permission.created",
      "permission.deleted",
      "permission.updated",
      "role.created",
      "role.deleted",
      "role.updated"
    ])
    expect(byDrift("roleObject")).toContain("organization_role.created")
    expect(byDrift("nullsOmitted")).toEqual(
      expect.arrayContaining(["invitation.created", "session.created"])
    )
    expect(byDrift("wrongObject")).toContain("user.created")
    expect(() => WorkOSStandIn.driftedEvent("roleObject", "role.created")).toThrow(/roleObject/)

    // Where each drift breaks the payload.
    const pathOf = (drift: WorkOSStandIn.Drift, type: Event.Type): RegExp => {
      switch (drift) {
        case "missingResourceTypeSlug":
          return /^data\.resource_type_slug$/
        case "roleObject":
        case "wrongObject":
          return /^data\.object$/
        case "nullsOmitted": {
          const nulls = Object.entries((examples as any)[type].data)
            .filter(([, value]) => value === null)
            .map(([key]) => key)
          return new RegExp(`^data\\.(${nulls.join("|")})$`)
        }
      }
    }
    for (const { drift, type } of WorkOSStandIn.driftCases) {
      const event = WorkOSStandIn.driftedEvent(drift, type)
      const decoded = Event.decode({ ...event, id: "event_01EHZNVPK3SFK441A1RGBFSHRT" })
      expect(Result.isFailure(decoded), `${drift} ${type}`).toBe(true)
      expect(failureOf(decoded)?.path).toMatch(pathOf(drift, type))
      // The example itself decodes: the drift alone breaks it.
      expect(Result.isSuccess(Event.decode((examples as any)[type])), type).toBe(true)
    }

    // Served over HTTP, after the seeds, each case once by default.
    const local = await WorkOSStandIn.start({ events: 5 })
    try {
      const last = idsOf(local.events())[4]!
      const appended = local.appendDrifted()
      expect(appended.map((event) => event.event)).toEqual(
        WorkOSStandIn.driftCases.map((c) => c.type)
      )
      expect(local.appendDrifted(2).map((event) => event.event)).toEqual(
        WorkOSStandIn.driftCases.slice(0, 2).map((c) => c.type)
      )
      const response = await fetch(`${local.url}/events?order=asc&limit=100&after=${last}`, {
        headers: { authorization: `Bearer ${local.apiKey}` }
      })
      const list = Result.getOrThrow(EventList.decodeJson(await response.text()))
      expect(list.data.length).toBe(appended.length + 2)
      for (const [i, event] of list.data.entries()) {
        expect(Result.isFailure(event), String(i)).toBe(true)
      }
      const failures = list.data.slice(0, appended.length).map((event) => failureOf(event))
      expect(failures.map((failure) => failure?.id)).toEqual(idsOf(appended))
      expect(failures.map((failure) => failure?.type)).toEqual(appended.map((event) => event.event))
    } finally {
      await local.close()
    }
  })
})
