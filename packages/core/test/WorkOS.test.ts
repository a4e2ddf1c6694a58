import { readFileSync } from "node:fs"
import { inspect } from "node:util"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import { FetchHttpClient } from "effect/http"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
// The stand-in lives in @workos-relay/testing, which depends on core; core cannot
// depend on it back (a cycle the workspace tools refuse), so its tests import the source.
import { Ports, WorkOSStandIn } from "../../testing/src/index.ts"
import { WorkOS } from "../src/index.ts"

let standIn: WorkOSStandIn.StandIn

beforeAll(async () => {
  standIn = await WorkOSStandIn.start({ events: 300 })
})
afterAll(() => standIn.close())
beforeEach(() => standIn.faults.clear())

/** The client's two ways to reach WorkOS: an `effect/http` client beneath it, or Node's own `http`. */
const transports = {
  "over effect/http (fetch)": (options: WorkOS.LayerOptions) =>
    WorkOS.layer(options).pipe(Layer.provide(FetchHttpClient.layer)),
  "over node:http": (options: WorkOS.LayerOptions) => WorkOS.layerNode(options)
}

describe.each(Object.entries(transports))("WorkOS client %s", (_, transport) => {
  /** The client against the stand-in, with short backoffs so tests stay fast. */
  const clientLayer = (options: WorkOS.LayerOptions = {}) =>
    transport({
      baseUrl: standIn.url,
      apiKey: Redacted.make(standIn.apiKey),
      ...options,
      retry: { baseDelay: "5 millis", maxDelay: "20 millis", ...options.retry }
    })

  const listEvents = (params: WorkOS.ListEventsParams = {}, options: WorkOS.LayerOptions = {}) =>
    WorkOS.listEvents(params).pipe(Effect.provide(clientLayer(options)))

  /** The requests the stand-in received while `effect` ran. */
  const requestsDuring = <A, E>(effect: Effect.Effect<A, E>) =>
    Effect.gen(function* () {
      const before = standIn.requests.length
      const exit = yield* Effect.result(effect)
      return { result: exit, requests: standIn.requests.slice(before) }
    })

  it.live("sends the API key as a bearer token and a User-Agent with the package version", () =>
    Effect.gen(function* () {
      const { result, requests } = yield* requestsDuring(listEvents({ limit: 5 }))
      expect(Result.getOrThrow(result).data.length).toBe(5)
      expect(requests.length).toBe(1)
      expect(requests[0]!.headers.authorization).toBe(`Bearer ${standIn.apiKey}`)
      const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))
      expect(requests[0]!.headers["user-agent"]).toBe(`workos-relay/${pkg.version}`)
      expect(WorkOS.userAgent).toBe(`workos-relay/${pkg.version}`)
    })
  )

  it.live("sends no trace context to WorkOS", () =>
    Effect.gen(function* () {
      const { requests } = yield* requestsDuring(listEvents({ limit: 1 }))
      expect(requests.length).toBe(1)
      expect(Object.keys(requests[0]!.headers)).not.toContain("traceparent")
      expect(Object.keys(requests[0]!.headers)).not.toContain("b3")
    })
  )

  it.live("asks one page exactly as the spec says", () =>
    Effect.gen(function* () {
      const events = standIn.events()
      const organization = standIn.organizations[0]!
      const { result, requests } = yield* requestsDuring(
        listEvents({
          events: ["dsync.user.created", "organization.created", "user.created"],
          organizationId: organization,
          rangeStart: new Date(events[0]!.created_at),
          rangeEnd: "2100-01-01T00:00:00Z",
          after: events[1]!.id,
          limit: 100,
          order: "asc"
        })
      )
      const params = requests[0]!.url.searchParams
      expect(Object.fromEntries(params)).toEqual({
        events: "dsync.user.created,organization.created,user.created",
        organization_id: organization,
        range_start: events[0]!.created_at,
        range_end: "2100-01-01T00:00:00Z",
        after: events[1]!.id,
        limit: "100",
        order: "asc"
      })
      const page = Result.getOrThrow(result)
      const expected = events
        .slice(2)
        .filter(
          (e: any) =>
            ["dsync.user.created", "organization.created", "user.created"].includes(e.event) &&
            (e.data.organization_id ?? e.data.id) === organization
        )
      expect(page.data.map((r) => Result.getOrThrow(r).id)).toEqual(expected.map((e) => e.id))
      expect(page.list_metadata.after).toBeNull()
    })
  )

  it.live("sends no filter for an empty list of types, and nothing it was not given", () =>
    Effect.gen(function* () {
      const { requests } = yield* requestsDuring(listEvents({ events: [] }))
      expect([...requests[0]!.url.searchParams.keys()]).toEqual([])
    })
  )

  it.live("fails fast on 401 with a clear message, and never prints the key", () =>
    Effect.gen(function* () {
      const started = Date.now()
      const { result, requests } = yield* requestsDuring(
        listEvents({}, { apiKey: Redacted.make("sk_test_not_the_right_key") })
      )
      expect(requests.length).toBe(1)
      expect(Date.now() - started).toBeLessThan(1000)
      const error = Result.getFailure(result).pipe((o: any) => o.value) as WorkOS.WorkOSError
      expect(error).toBeInstanceOf(WorkOS.WorkOSApiError)
      expect(error).toMatchObject({ status: 401, code: "unauthorized", request: "GET /events" })
      expect(error.message).toContain("401 Unauthorized")
      expect(error.message).toContain("Maybe your API key is invalid?")
      expect(error.message).toContain("WORKOS_API_KEY")
      expect(inspect(error, { depth: 10 })).not.toContain("sk_test_not_the_right_key")
      expect(JSON.stringify(error)).not.toContain("sk_test_not_the_right_key")
    })
  )

  it.live("names the address it could not reach, without the key", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(Ports.freePort)
      const result = yield* Effect.result(
        listEvents({}, { baseUrl: `http://127.0.0.1:${port}`, retry: { times: 0 } })
      )
      const error = Result.getFailure(result).pipe((o: any) => o.value) as WorkOS.WorkOSError
      expect(error).toBeInstanceOf(WorkOS.WorkOSUnavailableError)
      expect(error.message).toContain(`ECONNREFUSED 127.0.0.1:${port}`)
      expect(inspect(error, { depth: 10 })).not.toContain(standIn.apiKey)
    })
  )

  it.live("carries WorkOS's message, code and field errors, without retrying", () =>
    Effect.gen(function* () {
      const invalid = yield* requestsDuring(listEvents({ limit: 101 }))
      expect(invalid.requests.length).toBe(1)
      const error = (Result.getFailure(invalid.result) as any).value as WorkOS.WorkOSApiError
      expect(error).toMatchObject({
        _tag: "WorkOSApiError",
        status: 422,
        errors: [{ field: "limit", code: "invalid_limit" }]
      })
      expect(error.message).toContain("limit must be an integer between 1 and 100")
      expect(error.message).toContain("limit: invalid_limit")

      const unknown = yield* requestsDuring(listEvents({ organizationId: "org_nope" }))
      expect(unknown.requests.length).toBe(1)
      expect((Result.getFailure(unknown.result) as any).value).toMatchObject({
        status: 400,
        code: "organization_not_found",
        detail: "Organization not found: 'org_nope'."
      })

      for (const status of [403, 404]) {
        standIn.faults.next({ status, body: JSON.stringify({ message: `refused ${status}` }) })
        const refused = yield* requestsDuring(listEvents())
        expect(refused.requests.length).toBe(1)
        expect((Result.getFailure(refused.result) as any).value).toMatchObject({
          status,
          detail: `refused ${status}`
        })
      }
    })
  )

  it.live("retries 408, 429, 500, 502, 503, 504 and a cut connection, then succeeds", () =>
    Effect.gen(function* () {
      standIn.faults.next(
        { status: 408 },
        { status: 429 },
        { status: 500 },
        { status: 502 },
        { status: 503 },
        { status: 504 },
        { disconnect: true }
      )
      const { result, requests } = yield* requestsDuring(listEvents({ limit: 3 }))
      expect(Result.getOrThrow(result).data.length).toBe(3)
      expect(requests.length).toBe(8)
    })
  )

  it.live("waits what Retry-After asks before retrying", () =>
    Effect.gen(function* () {
      standIn.faults.next({ status: 429, retryAfter: 1 })
      const { result, requests } = yield* requestsDuring(listEvents({ limit: 1 }))
      expect(Result.isSuccess(result)).toBe(true)
      expect(requests.length).toBe(2)
      const waited = requests[1]!.at - requests[0]!.at
      // The backoff alone would be about 5 ms.
      expect(waited).toBeGreaterThanOrEqual(990)
      expect(waited).toBeLessThan(2500)
    })
  )

  it.live("caps what Retry-After may ask", () =>
    Effect.gen(function* () {
      standIn.faults.next({ status: 503, retryAfter: 3600 })
      const { result, requests } = yield* requestsDuring(
        listEvents({ limit: 1 }, { retry: { maxRetryAfter: "150 millis" } })
      )
      expect(Result.isSuccess(result)).toBe(true)
      const waited = requests[1]!.at - requests[0]!.at
      expect(waited).toBeGreaterThanOrEqual(140)
      // Uncapped, it would be an hour.
      expect(waited).toBeLessThan(3000)
    })
  )

  it.live("gives up after the retries with the last status, logging each retry", () =>
    Effect.gen(function* () {
      standIn.faults.next(...Array.from({ length: 4 }, () => ({ status: 503 })))
      const logs: Array<string> = []
      const capture = Logger.layer([
        Logger.make(({ logLevel, message }) => {
          logs.push(`${logLevel} ${[message].flat().join(" ")}`)
        })
      ])
      const { result, requests } = yield* requestsDuring(
        listEvents({}, { retry: { times: 3 } }).pipe(Effect.provide(capture))
      )
      expect(requests.length).toBe(4)
      // One line per retry, as it happens; the last failure is the error itself.
      expect(logs).toEqual(
        [1, 2, 3].map((n) =>
          expect.stringMatching(
            new RegExp(`^Warn WorkOS GET /events failed \\(attempt ${n} of 4\\), retrying: 503`)
          )
        )
      )
      const error = (Result.getFailure(result) as any).value as WorkOS.WorkOSUnavailableError
      expect(error).toMatchObject({ _tag: "WorkOSUnavailableError", status: 503, attempts: 4 })
      expect(error.message).toContain("after 4 attempts")
      expect(error.message).toContain("503")
    })
  )

  it.live("times out a slow answer and asks again", () =>
    Effect.gen(function* () {
      // Slow enough that only the timeout can end the wait; the timeout itself generous
      // enough for a loaded machine's healthy answer.
      standIn.faults.next({ delay: 20_000 })
      const { result, requests } = yield* requestsDuring(
        listEvents({ limit: 2 }, { timeout: "1 second" })
      )
      expect(Result.getOrThrow(result).data.length).toBe(2)
      // The slow one timed out, and a second attempt answered.
      expect(requests.length).toBe(2)

      standIn.faults.next({ delay: 20_000 }, { delay: 20_000 })
      const slow = yield* requestsDuring(
        listEvents({ limit: 2 }, { timeout: "200 millis", retry: { times: 1 } })
      )
      expect((Result.getFailure(slow.result) as any).value).toMatchObject({
        _tag: "WorkOSUnavailableError",
        status: undefined
      })
      expect((Result.getFailure(slow.result) as any).value.message).toContain("no response within")
    })
  )

  it.live("retries a 200 that is not an event list, then says what the body was", () =>
    Effect.gen(function* () {
      standIn.faults.next({ malformedJson: true })
      const recovered = yield* requestsDuring(listEvents({ limit: 1 }))
      expect(Result.isSuccess(recovered.result)).toBe(true)
      expect(recovered.requests.length).toBe(2)

      standIn.faults.next({ malformedJson: true }, { malformedJson: true })
      const failed = yield* requestsDuring(listEvents({}, { retry: { times: 1 } }))
      const error = (Result.getFailure(failed.result) as any).value as WorkOS.WorkOSResponseError
      expect(error._tag).toBe("WorkOSResponseError")
      expect(error.message).toContain("not an event list")
      expect(error.message).toContain('{\\"object\\":\\"list\\"')
    })
  )

  it.live("reads the API key from WORKOS_API_KEY when none is given", () =>
    Effect.gen(function* () {
      const layer = transport({ baseUrl: standIn.url }).pipe(
        Layer.provide(
          ConfigProvider.layer(ConfigProvider.fromEnvRecord({ WORKOS_API_KEY: standIn.apiKey }))
        )
      )
      const page = yield* WorkOS.listEvents({ limit: 1 }).pipe(Effect.provide(layer))
      expect(page.data.length).toBe(1)

      const missing = transport({ baseUrl: standIn.url }).pipe(
        Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord({})))
      )
      const error = yield* Effect.flip(WorkOS.listEvents().pipe(Effect.provide(missing)))
      expect(String(error)).toContain("WORKOS_API_KEY")
    })
  )
})
