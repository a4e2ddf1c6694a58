/**
 * A stand-in for the WorkOS Events API on 127.0.0.1: `GET /events` as WorkOS's
 * spec describes it, over real HTTP, so clients are tested as they run.
 *
 * - Bearer auth (401 otherwise); every query parameter, `events` comma-separated;
 *   cursor paging in `asc`, `desc` and `normal` order; 400 and 422 for bad
 *   parameters, with WorkOS's error bodies.
 * - Seeded with events of every type, built from the spec's examples, with fresh
 *   ULID-like ids (id order is creation order, as WorkOS's) and timestamps spread
 *   over the past week; more can be appended while it runs.
 * - Faults on demand, one per request in the order queued: a status (429 with
 *   `Retry-After`, 500, 503...), a slow answer, malformed JSON, a cut connection.
 *   Bad data is appended as events: a known type with a broken payload, payloads
 *   that drifted from the spec as real servers' have (`Drift`), a type the spec
 *   does not know.
 * - Quirks of the servers that speak this API in the wild (`Quirks`), each off by
 *   default and set per test, at `start({ quirks })` or on `standIn.quirks` while
 *   it runs; `hostile` turns on every one: `start({ quirks: hostile })`. The query
 *   read loosely (`order`, the range, the `events` filter ignored or read
 *   differently), events visible late and out of order or gone by retention,
 *   unknown cursors answered from the oldest, `list_metadata.after` that points
 *   backwards or repeats, last pages that repeat an event.
 *
 * Events are kept as their JSON text, so a page costs a string join and a
 * hundred thousand events serve fast.
 */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { Event } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { monotonic, prng, randomId } from "./internal/ulid.ts"
import * as WorkOSState from "./WorkOSState.ts"
import * as WorkOSWebhooks from "./WorkOSWebhooks.ts"

/** An event as stored and served: plain JSON. */
export type RawEvent = Record<string, unknown> & {
  readonly id: string
  readonly event: string
  readonly created_at: string
}

/**
 * What to append: an event type, taken from the spec's example, with any
 * top-level field replaced (`data` replaces the whole payload). `id` and
 * `created_at` are always the stand-in's, so ids keep creation order.
 */
export type EventInput = { readonly event: string } & Record<string, unknown>

/** One fault, served to one request instead of (or before) its normal answer. */
export type Fault =
  /** Answer with this status and a WorkOS error body; `retryAfter` (seconds or an HTTP date) sets `Retry-After`. */
  | { readonly status: number; readonly retryAfter?: number | string; readonly body?: string }
  /** Wait this many milliseconds, then answer normally. */
  | { readonly delay: number }
  /** Hold the answer until `until()` says so (asked every 10 ms), then answer normally. */
  | { readonly until: () => boolean }
  /** Answer 200 with a body that is not JSON (a list cut off half-way). */
  | { readonly malformedJson: true }
  /** Close the connection without answering. */
  | { readonly disconnect: true }

export interface RecordedRequest {
  readonly method: string
  readonly url: URL
  readonly headers: Http.IncomingHttpHeaders
  /** When it arrived, in unix milliseconds. */
  readonly at: number
}

export interface Options {
  /** The API key the stand-in accepts (default `sk_test_standin`). */
  readonly apiKey?: string | undefined
  /** How many events to seed, cycling through every type (default: one of each, 111). */
  readonly events?: number | undefined
  /** Organizations events belong to, in turn (default three). */
  readonly organizations?: ReadonlyArray<string> | undefined
  /** The seed of the ids and payload ids made up (default 1): the same seed, the same events. */
  readonly seed?: number | undefined
  /**
   * Quirks of real servers to turn on from the start (see `Quirks`); all off by
   * default. `WorkOSStandIn.hostile` turns on every one: `{ quirks: hostile }`, or
   * `{ quirks: { ...hostile, visibilityDelayMs: 100 } }` to change one.
   */
  readonly quirks?: Partial<Quirks> | undefined
  /** How long the seeded events span, ending a minute ago (default 7 days). */
  readonly seedSpanMs?: number | undefined
  /**
   * The creation time (ms) of each seeded event by its index, instead of an even
   * spread over `seedSpanMs`: many events may share one millisecond. Times never go
   * back: a time before the previous event's is taken as that one.
   */
  readonly seedTimes?: ((index: number, count: number) => number) | undefined
  /** The time each answer takes (see `Network`; default none). */
  readonly network?: Partial<Network> | undefined
}

/**
 * The network and the rate limit, as a client over the internet meets them; set at
 * `start({ network })` or on `standIn.network` while it runs.
 */
export interface Network {
  /** Every answer (429s included) is sent this many milliseconds after the request arrived (default 0). */
  latencyMs: number
  /** Plus a random extra delay in [0, jitterMs) (default 0). */
  jitterMs: number
  /**
   * WorkOS's rate limit: at most `requests` answered in any `windowMs` (WorkOS: 6,000
   * a minute per key); past it, 429 with `Retry-After` in whole seconds until a
   * request leaves the window. Undefined (the default): no limit.
   */
  rateLimit: { readonly requests: number; readonly windowMs: number } | undefined
}

/**
 * Behaviours of servers that speak this API, seen in the wild; each is off by
 * default, set at `start({ quirks })` or by changing `standIn.quirks` while it runs.
 */
export interface Quirks {
  /** `order` is checked but not applied: pages are always oldest first, as if `asc` (workos/workos-node#1610). */
  ignoreOrder: boolean
  /** `range_start` and `range_end` are checked but not applied. */
  ignoreRange: boolean
  /** `range_start` and `range_end` are not applied when `after` or `before` is given. */
  rangeWithoutAfter: boolean
  /** The `events` filter is checked but not applied. */
  ignoreEventsFilter: boolean
  /**
   * How the `events` filter is read: `"comma"` (the spec's, `events=a,b`; the default)
   * or `"brackets"` (only `events[]=a&events[]=b`; `events=a,b` is ignored).
   */
  eventsFilterStyle: "comma" | "brackets"
  /**
   * A page takes `limit` events and then drops those the filters exclude, so pages
   * may be short or empty while `list_metadata.after` still points further on.
   */
  filterAfterLimit: boolean
  /**
   * An `after` cursor the server does not know (no such event, an event gone by
   * retention, or one the type or organization filter excludes) is answered as if
   * no cursor were given: from the oldest matching event for `order=asc`, silently.
   * Off, an unknown but well-formed cursor works by id comparison.
   */
  unknownAfterFromOldest: boolean
  /** An event is served only once this many milliseconds have passed since its creation (default 0). */
  visibilityDelayMs: number
  /**
   * With `visibilityDelayMs`, each event becomes visible after its own delay, drawn
   * from the seed in [0, visibilityDelayMs]: an older event can become visible after
   * a newer one was served, so a reader that pages `after` the newest id it saw
   * misses it unless it reads that window again.
   */
  outOfOrderCommits: boolean
  /**
   * Events created more than this many milliseconds ago are gone: never served, and
   * as cursors unknown (default undefined: kept forever).
   */
  retentionMs: number | undefined
  /**
   * `list_metadata.after` points backwards: at the first event of the page rather
   * than its last, so following it serves all but one of the page again.
   */
  afterBackwards: boolean
  /**
   * `list_metadata.after` repeats: when there is more, it is the request's own
   * `after`, so following it serves the same page again, forever.
   * (On the first page, without `after`, it is as usual; wins over `afterBackwards`.)
   */
  stuckAfter: boolean
  /**
   * The last page (the one with `list_metadata.after: null`) ends with the event
   * the request's `after` named, already seen; even an empty last page does.
   */
  repeatLastEvent: boolean
}

const DAY = 24 * 60 * 60 * 1000

/** No quirk: the server as WorkOS's spec describes it. */
export const noQuirks: Readonly<Quirks> = Object.freeze({
  ignoreOrder: false,
  ignoreRange: false,
  rangeWithoutAfter: false,
  ignoreEventsFilter: false,
  eventsFilterStyle: "comma",
  filterAfterLimit: false,
  unknownAfterFromOldest: false,
  visibilityDelayMs: 0,
  outOfOrderCommits: false,
  retentionMs: undefined,
  afterBackwards: false,
  stuckAfter: false,
  repeatLastEvent: false
})

/**
 * Every quirk on at once, the server at its most hostile: order, range and the
 * `events` filter ignored (the filter read as brackets, if it were applied), the
 * filters applied after `limit`, unknown cursors answered from the oldest, events
 * visible 0 to 2 s after creation out of order, 30 days' retention (the seeded
 * week is kept), and `list_metadata.after` pointing backwards or stuck, with
 * last pages that repeat an event. It appends no drifted events: `appendDrifted`.
 */
export const hostile: Readonly<Quirks> = Object.freeze({
  ignoreOrder: true,
  ignoreRange: true,
  rangeWithoutAfter: true,
  ignoreEventsFilter: true,
  eventsFilterStyle: "brackets",
  filterAfterLimit: true,
  unknownAfterFromOldest: true,
  visibilityDelayMs: 2_000,
  outOfOrderCommits: true,
  retentionMs: 30 * DAY,
  afterBackwards: true,
  stuckAfter: true,
  repeatLastEvent: true
})

export interface StandIn {
  /** The base URL, as `http://127.0.0.1:<port>`. */
  readonly url: string
  readonly apiKey: string
  readonly organizations: ReadonlyArray<string>
  /** How many events it holds. */
  readonly size: () => number
  /** Every event it holds, oldest first, as served. */
  readonly events: () => ReadonlyArray<RawEvent>
  /**
   * Calls `listener` with each event appended from now on, as its JSON text (what a
   * webhook of it carries); returns a function that stops it. See `WorkOSWebhooks`.
   */
  readonly onAppend: (listener: (event: RawEvent, json: string) => void) => () => void
  /** Appends events (see `EventInput`), dated now; returns them as they will be served. */
  readonly append: (events: ReadonlyArray<EventInput>) => ReadonlyArray<RawEvent>
  /**
   * The objects the events describe, served by the list APIs (see `WorkOSState`);
   * `state.changeQuietly` changes one without an event.
   */
  readonly state: WorkOSState.State
  /** Events that change the state but are never served (lost, as in an outage). */
  readonly appendUnseen: (events: ReadonlyArray<EventInput>) => void
  /** Appends `count` events made from the spec's examples, cycling through every type. */
  readonly appendGenerated: (count: number) => ReadonlyArray<RawEvent>
  /**
   * Appends `count` events whose payloads drifted from the spec (see `Drift`),
   * cycling through `driftCases` (default: each case once). None decodes.
   */
  readonly appendDrifted: (count?: number) => ReadonlyArray<RawEvent>
  readonly faults: {
    /** Queues faults: each next request gets the next one. */
    readonly next: (...faults: ReadonlyArray<Fault>) => void
    readonly clear: () => void
    readonly pending: () => number
  }
  /** The quirks in force (see `Quirks`): change them at any time, the next request obeys. */
  readonly quirks: Quirks
  /**
   * `/webhook_endpoints` (create, list, update, as WorkOS's API): an endpoint registered
   * there gets a signed webhook of each event it subscribes to as it is appended.
   */
  readonly webhookEndpoints: WorkOSWebhooks.Endpoints
  /** Every request received, in order. */
  readonly requests: ReadonlyArray<RecordedRequest>
  /** How many times each event id was served in a 200 page (repeats and re-reads counted). */
  readonly served: ReadonlyMap<string, number>
  /** The latency and the rate limit in force (see `Network`): change them at any time. */
  readonly network: Network
  /** How many requests were answered 429 by the rate limit (queued faults not counted). */
  readonly throttled: () => number
  readonly close: () => Promise<void>
}

/** A known type with a payload that breaks its schema (its `data` replaced). */
export const brokenEvent = (type: Event.Type = "dsync.user.created"): EventInput => ({
  event: type,
  data: { id: 42, broken: true }
})

/** An event of a type the spec does not know. */
export const unknownTypeEvent = (type = "widget.assembled"): EventInput => ({
  event: type,
  data: { widget_id: "widget_01", organization_id: "org_unknown_type" }
})

/**
 * How payloads of known types have drifted from the spec on servers that speak
 * this API (WorkOS's own tools among them); a relay must keep such events.
 * - `missingResourceTypeSlug`: role and permission events (`role.*`,
 *   `organization_role.*`, `permission.*`) without `data.resource_type_slug`.
 * - `roleObject`: `organization_role.*` events whose payload says `object: "role"`.
 * - `nullsOmitted`: required nullable keys left out rather than null (a serialiser
 *   that drops nulls): `invitation.*`, `session.*`, `api_key.*`, `waitlist_user.*`.
 * - `wrongObject`: `user.*` events whose payload says `object: "userland_user"`.
 */
export type Drift = "missingResourceTypeSlug" | "roleObject" | "nullsOmitted" | "wrongObject"

type Payload = Record<string, unknown>
const exampleData = (type: Event.Type): Payload =>
  (examples as Record<string, { data: Payload }>)[type]!.data
const typesWhere = (has: (data: Payload) => boolean) =>
  Event.eventTypes.filter((type) => has(exampleData(type)))

/** Each drift: the types whose examples it applies to, and what it does to a payload. */
const drifts: Record<
  Drift,
  { readonly types: ReadonlyArray<Event.Type>; readonly apply: (data: Payload) => void }
> = {
  missingResourceTypeSlug: {
    types: typesWhere((data) => "resource_type_slug" in data),
    apply: (data) => {
      delete data.resource_type_slug
    }
  },
  roleObject: {
    types: typesWhere((data) => data.object === "organization_role"),
    apply: (data) => {
      data.object = "role"
    }
  },
  nullsOmitted: {
    types: typesWhere((data) => Object.values(data).includes(null)),
    apply: (data) => {
      for (const key of Object.keys(data)) if (data[key] === null) delete data[key]
    }
  },
  wrongObject: {
    types: typesWhere((data) => data.object === "user"),
    apply: (data) => {
      data.object = "userland_user"
    }
  }
}

/** Every drift with each type it applies to: what `appendDrifted` cycles through. */
export const driftCases: ReadonlyArray<{ readonly drift: Drift; readonly type: Event.Type }> = (
  Object.keys(drifts) as Array<Drift>
).flatMap((drift) => drifts[drift].types.map((type) => ({ drift, type })))

const applyDrift = (event: EventInput, drift: Drift, type: Event.Type): EventInput => {
  if (!drifts[drift].types.includes(type))
    throw new Error(`${drift} applies to ${drifts[drift].types.join(", ")}, not to ${type}`)
  drifts[drift].apply(event.data as Payload)
  return event
}

/**
 * A known type's example whose payload drifted from the spec (see `Drift`); `type`
 * must be one the drift applies to (default: the first, e.g. `organization_role.created`).
 */
export const driftedEvent = (
  drift: Drift = "missingResourceTypeSlug",
  type: Event.Type = drifts[drift].types[0]!
): EventInput => applyDrift(structuredClone(examples[type]) as EventInput, drift, type)

const DEFAULT_ORGANIZATIONS = [
  "org_01HZX4PM9V0W6Q8T3N2K5B7C1D",
  "org_01HZX4PMA3R8G6J1V9Y2E5S7F0",
  "org_01HZX4PMB7K2M4P6R8T0W1Y3Z5"
]

interface Stored {
  readonly id: string
  readonly type: string
  readonly organizationId: string | undefined
  readonly createdAt: number
  /** Where in [0, 1] of `visibilityDelayMs` it becomes visible, with `outOfOrderCommits`. */
  readonly lag: number
  readonly json: string
}

/** Starts a stand-in; `close()` stops it. */
export const start = async (options: Options = {}): Promise<StandIn> => {
  const apiKey = options.apiKey ?? "sk_test_standin"
  const organizations = options.organizations ?? DEFAULT_ORGANIZATIONS
  const random = prng(options.seed ?? 1)
  // Its own sequence, so that drawing lags leaves the ids as they always were.
  const lags = prng((options.seed ?? 1) ^ 0x5bd1e995)
  const nextId = monotonic(random)
  const store: Array<Stored> = []
  const knownOrganizations = new Set(organizations)
  const faults: Array<Fault> = []
  const requests: Array<RecordedRequest> = []
  const quirks: Quirks = { ...noQuirks, ...options.quirks }
  const served = new Map<string, number>()
  const network: Network = { latencyMs: 0, jitterMs: 0, rateLimit: undefined, ...options.network }
  const jitter = prng((options.seed ?? 1) ^ 0x2545f491)
  /** When each request the rate limit let through arrived, oldest first (a sliding window). */
  const admitted: Array<number> = []
  let throttled = 0
  const appendListeners = new Set<(event: RawEvent, json: string) => void>()
  let generated = 0
  let drifted = 0
  const state = WorkOSState.make()

  const add = (input: EventInput, at: number): RawEvent => {
    const last = store[store.length - 1]
    const createdAt = last === undefined ? at : Math.max(at, last.createdAt)
    const example = (examples as Record<string, Record<string, unknown>>)[input.event]
    const event: Record<string, unknown> = {
      ...(example === undefined ? { object: "event", data: {} } : structuredClone(example)),
      ...input,
      id: `event_${nextId(createdAt)}`,
      created_at: new Date(createdAt).toISOString()
    }
    state.observe(event)
    const organizationId = organizationOf(event)
    if (organizationId !== undefined) knownOrganizations.add(organizationId)
    store.push({
      id: event.id as string,
      type: input.event,
      organizationId,
      createdAt,
      lag: lags(),
      json: JSON.stringify(event)
    })
    for (const listener of appendListeners)
      listener(event as RawEvent, store[store.length - 1]!.json)
    return event as RawEvent
  }

  /** An example of the next type in turn, with its own payload ids and organization. */
  const generate = (): EventInput => {
    const type = Event.eventTypes[generated % Event.eventTypes.length]!
    const organization = organizations[generated % organizations.length]!
    generated++
    return exampleOf(type, organization)
  }

  /** The next drift case in turn, made like `generate`'s. */
  const generateDrifted = (): EventInput => {
    const { drift, type } = driftCases[drifted % driftCases.length]!
    const organization = organizations[drifted % organizations.length]!
    drifted++
    return applyDrift(exampleOf(type, organization), drift, type)
  }

  /** The spec's example of a type, with its own payload ids and this organization. */
  const exampleOf = (type: Event.Type, organization: string): EventInput => {
    const event = structuredClone(examples[type]) as Record<string, any>
    const data = event.data as Record<string, unknown>
    if (typeof data.id === "string") {
      const prefixed = /^([a-z_]+)_[0-9A-Z]{26}$/.exec(data.id)
      if (type.startsWith("organization.")) data.id = organization
      else if (prefixed !== null) data.id = randomId(prefixed[1]!, Date.now(), random)
    }
    if (typeof data.organization_id === "string") data.organization_id = organization
    return event as EventInput
  }

  // Seeds spread over the past week, ending a minute ago, so `latest` is clearly after them.
  const seedCount = options.events ?? Event.eventTypes.length
  const seedEnd = Date.now() - 60_000
  const spacing = Math.max(1, Math.floor((options.seedSpanMs ?? 7 * DAY) / Math.max(1, seedCount)))
  const seedTime =
    options.seedTimes ?? ((i: number, count: number) => seedEnd - (count - i) * spacing)
  for (let i = 0; i < seedCount; i++) add(generate(), seedTime(i, seedCount))

  /** Past the rate limit: how many seconds until a request leaves the window; undefined: within it. */
  const overLimit = (now: number): number | undefined => {
    const limit = network.rateLimit
    if (limit === undefined) return undefined
    while (admitted.length > 0 && admitted[0]! <= now - limit.windowMs) admitted.shift()
    if (admitted.length < limit.requests) {
      admitted.push(now)
      return undefined
    }
    return Math.max(1, Math.ceil((admitted[0]! + limit.windowMs - now) / 1000))
  }

  const server = Http.createServer((request, response) => {
    const delay =
      network.latencyMs + (network.jitterMs > 0 ? Math.floor(jitter() * network.jitterMs) : 0)
    if (delay <= 0) return handle(request, response)
    setTimeout(() => handle(request, response), delay)
  })

  const handle = (request: Http.IncomingMessage, response: Http.ServerResponse) => {
    if (request.destroyed) return
    const url = new URL(request.url ?? "/", "http://127.0.0.1")
    const now = Date.now()
    requests.push({
      method: request.method ?? "GET",
      url,
      headers: request.headers,
      at: now
    })
    const retryAfter = overLimit(now)
    if (retryAfter !== undefined) {
      throttled++
      return send(
        response,
        429,
        JSON.stringify({ message: "Too Many Requests", code: "rate_limit_exceeded" }),
        { "retry-after": String(retryAfter) }
      )
    }
    const fault = faults.shift()
    if (fault === undefined) return answer(request, response, url)
    if ("delay" in fault) {
      setTimeout(() => answer(request, response, url), fault.delay)
      return
    }
    if ("until" in fault) {
      const held = setInterval(() => {
        if (!fault.until() && !response.destroyed) return
        clearInterval(held)
        if (!response.destroyed) answer(request, response, url)
      }, 10)
      return
    }
    if ("disconnect" in fault) {
      request.socket.destroy()
      return
    }
    if ("malformedJson" in fault) {
      return send(response, 200, '{"object":"list","data":[{"object":"event","id":"event_01')
    }
    const headers: Http.OutgoingHttpHeaders = {}
    if (fault.retryAfter !== undefined) headers["retry-after"] = String(fault.retryAfter)
    send(
      response,
      fault.status,
      fault.body ?? JSON.stringify({ message: Http.STATUS_CODES[fault.status] ?? "Error" }),
      headers
    )
  }

  const answer = (request: Http.IncomingMessage, response: Http.ServerResponse, url: URL) => {
    if (url.pathname.startsWith("/webhook_endpoints"))
      return answerEndpoints(request, response, url)
    const listed = state.answer(url)
    if (listed !== undefined && request.headers.authorization === `Bearer ${apiKey}`)
      return sendJson(response, listed.status, listed.body)
    if (listed !== undefined) return sendJson(response, 401, { message: "Unauthorized" })
    if (url.pathname !== "/events") return sendJson(response, 404, { message: "Not Found" })
    if (request.method !== "GET")
      return sendJson(response, 405, { message: `${request.method} is not allowed on /events` })
    if (request.headers.authorization !== `Bearer ${apiKey}`) {
      return sendJson(response, 401, {
        message: "Could not authorize the request. Maybe your API key is invalid?",
        code: "unauthorized"
      })
    }
    const query = parseQuery(url.searchParams, knownOrganizations, quirks.eventsFilterStyle)
    if ("status" in query) return sendJson(response, query.status, query.body)
    const { data, after } = page(store, query, quirks, Date.now())
    for (const event of data) served.set(event.id, (served.get(event.id) ?? 0) + 1)
    send(
      response,
      200,
      `{"object":"list","data":[${data.map((event) => event.json).join(",")}],"list_metadata":{"after":${after === null ? "null" : JSON.stringify(after)}}}`
    )
  }

  const webhookEndpoints = WorkOSWebhooks.endpoints(
    {
      onAppend: (listener) => {
        appendListeners.add(listener)
        return () => void appendListeners.delete(listener)
      }
    },
    new Set(Event.eventTypes),
    options.seed ?? 1
  )

  const answerEndpoints = (
    request: Http.IncomingMessage,
    response: Http.ServerResponse,
    url: URL
  ) => {
    if (request.headers.authorization !== `Bearer ${apiKey}`)
      return sendJson(response, 401, { message: "Unauthorized", code: "unauthorized" })
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const answered = webhookEndpoints.handle(
        request.method ?? "GET",
        url.pathname,
        Buffer.concat(chunks).toString("utf8")
      )
      if (answered === undefined) return sendJson(response, 404, { message: "Not Found" })
      sendJson(response, answered.status, answered.body)
    })
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    apiKey,
    organizations,
    size: () => store.length,
    events: () => store.map((event) => JSON.parse(event.json) as RawEvent),
    onAppend: (listener) => {
      appendListeners.add(listener)
      return () => void appendListeners.delete(listener)
    },
    append: (events) => events.map((event) => add(event, Date.now())),
    state,
    appendUnseen: (events) => {
      for (const event of events) state.observe({ ...event })
    },
    appendGenerated: (count) => Array.from({ length: count }, () => add(generate(), Date.now())),
    appendDrifted: (count = driftCases.length) =>
      Array.from({ length: count }, () => add(generateDrifted(), Date.now())),
    faults: {
      next: (...more) => {
        faults.push(...more)
      },
      clear: () => {
        faults.length = 0
      },
      pending: () => faults.length
    },
    quirks,
    webhookEndpoints,
    requests,
    served,
    network,
    throttled: () => throttled,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

const send = (
  response: Http.ServerResponse,
  status: number,
  body: string,
  headers: Http.OutgoingHttpHeaders = {}
) => {
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...headers
  })
  response.end(body)
}

const sendJson = (response: Http.ServerResponse, status: number, body: unknown) =>
  send(response, status, JSON.stringify(body))

/** A stand-in for the length of a scope. */
export const make = (options: Options = {}): Effect.Effect<StandIn, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (standIn) => Effect.promise(() => standIn.close())
  )

// ---------------------------------------------------------------------------
// The query

interface Query {
  readonly types: ReadonlySet<string> | undefined
  readonly organizationId: string | undefined
  readonly rangeStart: number | undefined
  readonly rangeEnd: number | undefined
  readonly after: string | undefined
  readonly before: string | undefined
  readonly limit: number
  readonly order: "asc" | "desc" | "normal"
}

type Refusal = { readonly status: 400 | 422; readonly body: unknown }

const invalid = (field: string, code: string, message: string): Refusal => ({
  status: 422,
  body: { message, errors: [{ code, field }] }
})

const knownTypes: ReadonlySet<string> = new Set(Event.eventTypes)

const parseQuery = (
  params: URLSearchParams,
  organizations: ReadonlySet<string>,
  eventsFilterStyle: Quirks["eventsFilterStyle"]
): Query | Refusal => {
  const limitText = params.get("limit")
  const limit = limitText === null ? 10 : Number(limitText)
  if (!/^\d+$/.test(limitText ?? "10") || limit < 1 || limit > 100)
    return invalid("limit", "invalid_limit", "limit must be an integer between 1 and 100.")

  const order = params.get("order") ?? "desc"
  if (order !== "asc" && order !== "desc" && order !== "normal")
    return invalid("order", "invalid_order", `order must be "asc", "desc" or "normal".`)

  // `style: form, explode: false`: one parameter, comma-separated; empty means no filter.
  // The brackets quirk reads `events[]=a&events[]=b` instead, one name each.
  const eventsText = params.get("events")
  const names =
    eventsFilterStyle === "brackets"
      ? params.getAll("events[]").filter((name) => name !== "")
      : eventsText === null || eventsText === ""
        ? []
        : eventsText.split(",")
  const unknown = names.find((name) => !knownTypes.has(name))
  if (unknown !== undefined)
    return invalid("events", "invalid_event_type", `Unknown event type: '${unknown}'.`)

  const range = (name: string): number | undefined | Refusal => {
    const text = params.get(name)
    if (text === null) return undefined
    const ms = Date.parse(text)
    return Number.isNaN(ms)
      ? invalid(name, "invalid_date", `${name} must be an ISO-8601 date.`)
      : ms
  }
  const rangeStart = range("range_start")
  if (typeof rangeStart === "object") return rangeStart
  const rangeEnd = range("range_end")
  if (typeof rangeEnd === "object") return rangeEnd

  const after = params.get("after") ?? undefined
  const before = params.get("before") ?? undefined
  for (const [name, cursor] of [
    ["after", after],
    ["before", before]
  ] as const) {
    if (cursor !== undefined && !/^event_[0-9A-Z]{26}$/.test(cursor))
      return invalid(name, "invalid_cursor", `${name} must be an event id.`)
  }
  if (after !== undefined && before !== undefined)
    return { status: 400, body: { message: "Pass either 'after' or 'before', not both." } }

  const organizationId = params.get("organization_id") ?? undefined
  if (organizationId !== undefined && !organizations.has(organizationId)) {
    return {
      status: 400,
      body: {
        message: `Organization not found: '${organizationId}'.`,
        code: "organization_not_found"
      }
    }
  }

  return {
    types: names.length === 0 ? undefined : new Set(names),
    organizationId,
    rangeStart,
    rangeEnd,
    after,
    before,
    limit,
    order
  }
}

/** The organization an event belongs to: its payload's `organization_id`, or the organization itself. */
const organizationOf = (event: Record<string, unknown>): string | undefined => {
  const data = event.data as Record<string, unknown> | undefined
  if (typeof data !== "object" || data === null) return undefined
  if (typeof data.organization_id === "string") return data.organization_id
  if (String(event.event).startsWith("organization.") && typeof data.id === "string") return data.id
  return undefined
}

/** The index of the first event for which `past` holds, `past` being false and then true along the store. */
const firstWhere = (store: ReadonlyArray<Stored>, past: (event: Stored) => boolean): number => {
  let lo = 0
  let hi = store.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (past(store[mid]!)) hi = mid
    else lo = mid + 1
  }
  return lo
}

/** The index of the first event whose id is greater than `id` (ids sort as events were made). */
const firstAfter = (store: ReadonlyArray<Stored>, id: string): number =>
  firstWhere(store, (event) => event.id > id)

/** The index of the first event whose id is `id` or greater. */
const firstFrom = (store: ReadonlyArray<Stored>, id: string): number =>
  firstWhere(store, (event) => event.id >= id)

/** The query as a quirky server reads it: the parameters it ignores dropped. */
const asRead = (query: Query, quirks: Quirks): Query => {
  const withCursor = query.after !== undefined || query.before !== undefined
  const noRange = quirks.ignoreRange || (quirks.rangeWithoutAfter && withCursor)
  return {
    ...query,
    order: quirks.ignoreOrder ? "asc" : query.order,
    types: quirks.ignoreEventsFilter ? undefined : query.types,
    rangeStart: noRange ? undefined : query.rangeStart,
    rangeEnd: noRange ? undefined : query.rangeEnd
  }
}

/**
 * The events the server holds at a moment: those in [lo, hi) that are `shown`.
 * Retention cuts the oldest (a prefix: ids and times rise together), a fixed
 * visibility delay the newest (a suffix); with out-of-order commits only events
 * younger than the delay are looked at one by one. Without quirks, the whole store.
 */
interface View {
  readonly lo: number
  readonly hi: number
  readonly shown: (i: number) => boolean
}

const always = () => true

const viewAt = (store: ReadonlyArray<Stored>, quirks: Quirks, now: number): View => {
  const { retentionMs, visibilityDelayMs: delay } = quirks
  const lo =
    retentionMs === undefined
      ? 0
      : firstWhere(store, (event) => event.createdAt >= now - retentionMs)
  if (!(delay > 0)) return { lo, hi: store.length, shown: always }
  // Events made before this are visible whatever their own delay.
  const settled = firstWhere(store, (event) => event.createdAt > now - delay)
  if (!quirks.outOfOrderCommits) return { lo, hi: settled, shown: always }
  return {
    lo,
    hi: store.length,
    shown: (i) => i < settled || store[i]!.createdAt + store[i]!.lag * delay <= now
  }
}

/** The event of this id, if the server holds it now and would serve it to this query's filters. */
const known = (
  store: ReadonlyArray<Stored>,
  view: View,
  query: Query,
  id: string
): Stored | undefined => {
  const i = firstFrom(store, id)
  const event = store[i]
  return event !== undefined &&
    event.id === id &&
    i >= view.lo &&
    i < view.hi &&
    view.shown(i) &&
    (query.types === undefined || query.types.has(event.type)) &&
    (query.organizationId === undefined || event.organizationId === query.organizationId)
    ? event
    : undefined
}

interface Page {
  readonly data: ReadonlyArray<Stored>
  readonly after: string | null
}

/**
 * One page, in steps, each quirk one of them: the query as the server reads it,
 * the events it holds now, the cursor it knows, the walk (with the filters before
 * or after `limit`), then `list_metadata.after` and the last page as it answers them.
 */
const page = (store: ReadonlyArray<Stored>, asked: Query, quirks: Quirks, now: number): Page => {
  const read = asRead(asked, quirks)
  const view = viewAt(store, quirks, now)
  const cursor = read.after === undefined ? undefined : known(store, view, read, read.after)
  const forgets = quirks.unknownAfterFromOldest && read.after !== undefined && cursor === undefined
  const walked = walk(
    store,
    view,
    forgets ? { ...read, after: undefined } : read,
    quirks.filterAfterLimit
  )

  if (walked.more && walked.last !== undefined) {
    const after =
      quirks.stuckAfter && asked.after !== undefined
        ? asked.after
        : quirks.afterBackwards
          ? walked.first!.id
          : walked.last.id
    return { data: walked.data, after }
  }
  return {
    data: quirks.repeatLastEvent && cursor !== undefined ? [...walked.data, cursor] : walked.data,
    after: null
  }
}

interface Walked {
  /** The page, in the order asked. */
  readonly data: ReadonlyArray<Stored>
  /** The first and last events the walk took, in walk order (with `filterAfterLimit`, maybe not in `data`). */
  readonly first: Stored | undefined
  readonly last: Stored | undefined
  /** Whether the walk has more to give past `last`. */
  readonly more: boolean
}

/**
 * The walk. The list is walked forwards (`asc`) or backwards (`desc`, `normal`);
 * `after` continues the walk past an event, `before` walks the other way from it
 * (for `normal`, the reverse: `after` goes to newer events). `list_metadata.after`
 * is the last event of the page when the walk has more to give, else null.
 */
const walk = (
  store: ReadonlyArray<Stored>,
  view: View,
  query: Query,
  filterAfterLimit: boolean
): Walked => {
  const descending = query.order !== "asc"
  const normal = query.order === "normal"
  // Which way the walk goes from the cursor, in index terms (+1: newer).
  let step: 1 | -1
  let from: number
  let reverse = false
  if (query.after !== undefined) {
    const newer = normal || !descending
    step = newer ? 1 : -1
    from = newer ? firstAfter(store, query.after) : firstFrom(store, query.after) - 1
    reverse = normal
  } else if (query.before !== undefined) {
    const newer = descending && !normal
    step = newer ? 1 : -1
    from = newer ? firstAfter(store, query.before) : firstFrom(store, query.before) - 1
    // A page is always in the order asked, whichever way it was walked.
    reverse = descending ? newer : !newer
  } else {
    step = descending ? -1 : 1
    from = descending ? store.length - 1 : 0
  }
  // Start within what the server holds.
  from = step === 1 ? Math.max(from, view.lo) : Math.min(from, view.hi - 1)

  const matches = (event: Stored): boolean =>
    (query.types === undefined || query.types.has(event.type)) &&
    (query.organizationId === undefined || event.organizationId === query.organizationId) &&
    (query.rangeStart === undefined || event.createdAt >= query.rangeStart) &&
    (query.rangeEnd === undefined || event.createdAt < query.rangeEnd)

  const inBounds = (i: number) => i >= view.lo && i < view.hi
  const data: Array<Stored> = []
  let i = from
  // The first and last events the walk took: the last is where the next page goes on from.
  let first: Stored | undefined
  let last: Stored | undefined
  if (filterAfterLimit) {
    // Take `limit` events, then drop those the filters exclude.
    for (let taken = 0; inBounds(i) && taken < query.limit; i += step) {
      if (!view.shown(i)) continue
      taken++
      last = store[i]!
      first ??= last
      if (matches(last)) data.push(last)
    }
    while (inBounds(i) && !view.shown(i)) i += step
  } else {
    for (; inBounds(i); i += step) {
      const event = store[i]!
      if (!matches(event) || !view.shown(i)) continue
      // A match beyond a full page: there is more, and the page ends here.
      if (data.length === query.limit) break
      data.push(event)
      first ??= event
      last = event
    }
  }
  return { data: reverse ? data.reverse() : data, first, last, more: inBounds(i) }
}
