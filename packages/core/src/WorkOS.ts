/**
 * The WorkOS API client: one service over `effect/http`, or over Node's `http`.
 *
 * The API key stays `Redacted` until it is put in the `Authorization` header.
 * Each attempt has its own timeout. Transient failures (408, 429, 500, 502, 503,
 * 504, transport errors, timeouts, a 200 whose body is not an event list) are
 * retried with jittered exponential backoff that waits at least what `Retry-After`
 * asks, within a cap. What WorkOS means (bad parameters, a wrong key, a missing
 * resource) is a typed `WorkOSApiError` carrying WorkOS's own explanation, never retried.
 *
 * Provide an `HttpClient` (`FetchHttpClient.layer`, or `NodeHttpClient.layerUndici`
 * from `@effect/platform-node`) beneath `WorkOS.layer(...)`; or, on Node, use
 * `WorkOS.layerNode(...)`, over Node's own `http`/`https` (what the runner uses).
 */
import { createRequire } from "node:module"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { Headers, HttpClient, type HttpClientError, HttpClientRequest } from "effect/http"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as EventList from "./EventList.ts"
import { version } from "./internal/version.ts"
import type { RequestBudget } from "./RequestBudget.ts"

// ---------------------------------------------------------------------------
// Options

/** How transient failures are retried. */
export interface RetryPolicy {
  /** Retries after the first attempt before the request fails (0 disables retries). */
  readonly times: number
  /** The first backoff; each next one doubles, with ±20% jitter. */
  readonly baseDelay: Duration.Input
  /** The longest backoff. */
  readonly maxDelay: Duration.Input
  /** The longest wait a `Retry-After` header is obeyed for; a longer ask waits this long. */
  readonly maxRetryAfter: Duration.Input
}

export interface Options {
  /** A WorkOS secret key (`sk_...`). */
  readonly apiKey: Redacted.Redacted<string>
  /** Where the API is; default `https://api.workos.com`. */
  readonly baseUrl: string
  /** The time limit of one attempt (a retry gets a fresh one); default 30 s. */
  readonly timeout: Duration.Input
  readonly retry: RetryPolicy
  /**
   * The request budget every attempt waits for (see `RequestBudget`); a 429 slows it
   * down for everyone who shares it. Without one, requests go as fast as they come.
   */
  readonly budget?: RequestBudget | undefined
}

/** What `layer` takes: every option may be left out; the API key then comes from `WORKOS_API_KEY`. */
export interface LayerOptions {
  readonly apiKey?: Redacted.Redacted<string> | undefined
  readonly baseUrl?: string | undefined
  readonly timeout?: Duration.Input | undefined
  readonly retry?: Partial<RetryPolicy> | undefined
  readonly budget?: RequestBudget | undefined
}

export const defaults = {
  baseUrl: "https://api.workos.com",
  timeout: "30 seconds",
  retry: {
    // About two minutes of retrying in all with these delays: long enough to ride
    // out a deploy or a rate limit, short enough that a real outage is reported.
    times: 8,
    baseDelay: "250 millis",
    maxDelay: "30 seconds",
    maxRetryAfter: "60 seconds"
  }
} as const satisfies Omit<Options, "apiKey">

/** The User-Agent of every request. */
export const userAgent = `workos-relay/${version}`

// ---------------------------------------------------------------------------
// Errors

/** One entry of a 422's `errors`. */
export interface FieldError {
  readonly code: string
  readonly field: string
}

const statusNames: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  422: "Unprocessable Entity"
}

/**
 * WorkOS refused the request (400, 401, 403, 404, 422 or another status that is
 * not transient). Retrying the same request cannot help, so it is never retried.
 */
export class WorkOSApiError extends Data.TaggedError("WorkOSApiError")<{
  /** The request, as `GET /events`. */
  readonly request: string
  readonly status: number
  /** WorkOS's `message`: what is wrong, in its words. */
  readonly detail: string
  /** WorkOS's `code`, when it sends one. */
  readonly code: string | undefined
  /** WorkOS's `errors` (422): the fields that failed validation. */
  readonly errors: ReadonlyArray<FieldError>
  /** WorkOS's `X-Request-ID`, for its support. */
  readonly requestId: string | undefined
}> {
  override get message(): string {
    const name = statusNames[this.status]
    const code = this.code === undefined ? "" : ` (${this.code})`
    const fields =
      this.errors.length === 0
        ? ""
        : `; ${this.errors.map((e) => `${e.field}: ${e.code}`).join(", ")}`
    const hint =
      this.status === 401
        ? "; check the API key (WORKOS_API_KEY): it is missing, wrong or revoked"
        : this.status === 403
          ? "; the API key may not read this resource"
          : ""
    return `WorkOS answered ${this.request} with ${this.status}${name ? ` ${name}` : ""}: ${this.detail}${code}${fields}${hint}`
  }
}

/** WorkOS could not be reached or kept failing transiently, through every retry. */
export class WorkOSUnavailableError extends Data.TaggedError("WorkOSUnavailableError")<{
  readonly request: string
  /** The status of the last response, if there was one (not for transport errors and timeouts). */
  readonly status: number | undefined
  /** What went wrong on the last attempt. */
  readonly reason: string
  /** How long the last response's `Retry-After` asked to wait, if it did. */
  readonly retryAfter: Duration.Duration | undefined
  /** Attempts made, the first included. */
  readonly attempts: number
}> {
  override get message(): string {
    return `WorkOS did not answer ${this.request} after ${this.attempts} attempt${this.attempts === 1 ? "" : "s"}: ${this.reason}`
  }
}

/** WorkOS answered 2xx with a body that is not an event list, through every retry. */
export class WorkOSResponseError extends Data.TaggedError("WorkOSResponseError")<{
  readonly request: string
  readonly cause: EventList.EventListDecodeError
  readonly attempts: number
}> {
  override get message(): string {
    return `${this.request}: ${this.cause.message} (after ${this.attempts} attempt${this.attempts === 1 ? "" : "s"})`
  }
}

export type WorkOSError = WorkOSApiError | WorkOSUnavailableError | WorkOSResponseError

// ---------------------------------------------------------------------------
// Requests

/**
 * The query of one `GET /events` page, as the spec has it. An empty `events`
 * list is the same as none: every type.
 */
export interface ListEventsParams {
  /** Event type names; sent comma-separated. */
  readonly events?: ReadonlyArray<string> | undefined
  readonly organizationId?: string | undefined
  /** Events created at or after this instant (ISO-8601 when a string). */
  readonly rangeStart?: Date | string | undefined
  /** Events created before this instant (ISO-8601 when a string). */
  readonly rangeEnd?: Date | string | undefined
  /** An event id: the page starts right after it. */
  readonly after?: string | undefined
  /** An event id: the page ends right before it. */
  readonly before?: string | undefined
  /** 1 to 100; WorkOS's default is 10. */
  readonly limit?: number | undefined
  /** WorkOS's default is `desc`; a consumer following the stream asks `asc`. */
  readonly order?: "asc" | "desc" | "normal" | undefined
}

/** The URL query of a page, in the spec's names and formats. */
export const eventsQuery = (params: ListEventsParams): Array<[string, string]> => {
  const query: Array<[string, string]> = []
  const add = (name: string, value: string | number | Date | undefined) => {
    if (value !== undefined)
      query.push([name, value instanceof Date ? value.toISOString() : String(value)])
  }
  if (params.events !== undefined && params.events.length > 0)
    add("events", params.events.join(","))
  add("organization_id", params.organizationId)
  add("range_start", params.rangeStart)
  add("range_end", params.rangeEnd)
  add("after", params.after)
  add("before", params.before)
  add("limit", params.limit)
  add("order", params.order)
  return query
}

// ---------------------------------------------------------------------------
// The service

export interface Service {
  /** Where requests go. */
  readonly baseUrl: string
  /** One page of `GET /events`; each event decoded on its own. */
  readonly listEvents: (
    params?: ListEventsParams
  ) => Effect.Effect<EventList.EventList, WorkOSError>
}

export class WorkOS extends Context.Service<WorkOS, Service>()("@workos-relay/core/WorkOS") {}

/** One page of `GET /events`, with the `WorkOS` service from the context. */
export const listEvents = (
  params?: ListEventsParams
): Effect.Effect<EventList.EventList, WorkOSError, WorkOS> =>
  Effect.gen(function* () {
    const workos = yield* WorkOS
    return yield* workos.listEvents(params)
  })

/** A transient failure of one attempt; becomes a `WorkOSUnavailableError` when retries run out. */
class Transient extends Data.TaggedError("Transient")<{
  readonly status: number | undefined
  readonly reason: string
  readonly retryAfter: Duration.Duration | undefined
}> {}

/** A 2xx whose body is not an event list; retried too, as a proxy or a cut body may cause it. */
class BadBody extends Data.TaggedError("BadBody")<{
  readonly cause: EventList.EventListDecodeError
}> {}

/** What one attempt got back: the status, the whole body and the headers it may need. */
interface Reply {
  readonly status: number
  readonly text: string
  readonly header: (name: "retry-after" | "x-request-id") => string | undefined
}

/** One `GET /events` with this query, read to the end; a broken connection is `Transient`. */
type GetEvents = (query: ReadonlyArray<[string, string]>) => Effect.Effect<Reply, Transient>

/** Builds the client from complete options, over the `HttpClient` in the context. */
export const make = (options: Options): Effect.Effect<Service, never, HttpClient.HttpClient> =>
  Effect.map(HttpClient.HttpClient, (http) =>
    makeWith(options, overHttpClient(http, endpoint(options), options.apiKey))
  )

/**
 * Builds the client from complete options, over Node's own `http`/`https` with their
 * global agents (connections kept alive; `NODE_USE_ENV_PROXY` honoured). It needs no
 * `HttpClient`, and fetching and decoding a page costs 20-30% less CPU than through
 * `effect/http`'s Node client, which forks and races an upload fiber and tracks
 * every response even for a GET with no body.
 */
export const makeNode = (options: Options): Effect.Effect<Service> =>
  Effect.sync(() => makeWith(options, overNodeHttp(endpoint(options), options.apiKey)))

/** The base URL without a trailing slash. */
const baseUrlOf = (options: Options): string => options.baseUrl.replace(/\/+$/, "")

const endpoint = (options: Options): string => `${baseUrlOf(options)}/events`

const overHttpClient =
  (http: HttpClient.HttpClient, url: string, apiKey: Redacted.Redacted<string>): GetEvents =>
  (query) =>
    http
      .execute(
        HttpClientRequest.get(url, {
          urlParams: query,
          acceptJson: true,
          headers: { "user-agent": userAgent }
        }).pipe(HttpClientRequest.bearerToken(apiKey))
      )
      .pipe(
        // WorkOS takes no part in the caller's traces: no `b3` or `traceparent` header
        // goes out. (Without a tracer they held Effect's placeholder ids, not even valid
        // W3C trace context.) The client span is still made for a tracer to record.
        Effect.provideService(HttpClient.TracerPropagationEnabled, false),
        // A body that cannot be read is a transport failure too: the connection broke.
        Effect.flatMap((response) =>
          Effect.map(
            response.text,
            (text): Reply => ({
              status: response.status,
              text,
              header: (name) => response.headers[name]
            })
          )
        ),
        Effect.catchTag("HttpClientError", (error) => Effect.fail(transportFailure(error)))
      )

// Loaded with `require`, on first use: importing `node:http` as ESM evaluates its lazy
// exports, Node's bundled undici among them (~4 MiB held for nothing).
const require = createRequire(import.meta.url)

const overNodeHttp = (url: string, apiKey: Redacted.Redacted<string>): GetEvents => {
  const base = new URL(url)
  const transport: typeof import("node:http") =
    base.protocol === "https:" ? require("node:https") : require("node:http")
  const headers = {
    accept: "application/json",
    authorization: `Bearer ${Redacted.value(apiKey)}`,
    "user-agent": userAgent
  }
  // The request's options made once; only the path changes (no URL parsed per request).
  const target = {
    protocol: base.protocol,
    // An IPv6 host is bracketed in a URL, not in `http.request`'s options.
    hostname: base.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: base.port,
    headers
  }
  const pathOf = (query: ReadonlyArray<[string, string]>): string => {
    let path = base.pathname + base.search
    let separator = base.search === "" ? "?" : "&"
    for (const [name, value] of query) {
      path += `${separator}${encodeURIComponent(name)}=${encodeURIComponent(value)}`
      separator = "&"
    }
    return path
  }
  // Effect ignores a second `resume`, and any after an interrupt.
  return (query) =>
    Effect.callback<Reply, Transient>((resume) => {
      // The system's message names the host (`connect ECONNREFUSED 10.0.0.1:443`).
      const broken = (error: NodeJS.ErrnoException) =>
        resume(
          Effect.fail(
            new Transient({
              status: undefined,
              reason: error.message || error.code || String(error),
              retryAfter: undefined
            })
          )
        )
      const request = transport.get({ ...target, path: pathOf(query) }, (response) => {
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("error", broken)
        response.on("end", () =>
          resume(
            Effect.succeed({
              status: response.statusCode ?? 0,
              text: Buffer.concat(chunks).toString("utf8"),
              header: (name) => {
                const value = response.headers[name]
                return Array.isArray(value) ? value[0] : value
              }
            })
          )
        )
      })
      request.on("error", broken)
      // Interrupted (a timeout, a shutdown): the connection is dropped, not reused.
      return Effect.sync(() => request.destroy())
    })
}

const makeWith = (options: Options, getEvents: GetEvents): Service => {
  const baseUrl = baseUrlOf(options)
  const timeout = Duration.fromInputUnsafe(options.timeout)
  const policy = options.retry
  const schedule = retrySchedule(policy)

  const budget = options.budget
  const listEvents = (params: ListEventsParams = {}) => {
    // The limit covers the request alone: decoding the page happens after it, outside
    // the race, so no page is held by the race's fibers (see `readReply`).
    const sent = getEvents(eventsQuery(params)).pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () =>
          Effect.fail(
            new Transient({
              status: undefined,
              reason: `no response within ${Duration.format(timeout)}`,
              retryAfter: undefined
            })
          )
      }),
      Effect.tap((reply) => (budget === undefined ? Effect.void : throttleOn429(budget, reply))),
      Effect.flatMap((reply) => readReply("GET /events", reply))
    )
    // The wait for the budget's slot is not part of the attempt's time limit.
    const attempt = budget === undefined ? sent : Effect.andThen(budget.take, sent)
    // Each failure that will be retried is logged as it happens: with the default
    // policy the retries take about two minutes, silent until now.
    return Effect.suspend(() => {
      let failures = 0
      return attempt.pipe(
        Effect.tapError((error) => {
          if (error._tag !== "Transient" && error._tag !== "BadBody") return Effect.void
          failures++
          if (failures > policy.times) return Effect.void
          const what = error._tag === "Transient" ? error.reason : error.cause.message
          return Effect.logWarning(
            `WorkOS GET /events failed (attempt ${failures} of ${policy.times + 1}), retrying: ${what}`
          )
        }),
        Effect.retry({
          schedule,
          times: policy.times,
          while: (error) => error._tag === "Transient" || error._tag === "BadBody"
        }),
        Effect.mapError((error): WorkOSError => {
          const attempts = policy.times + 1
          switch (error._tag) {
            case "Transient":
              return new WorkOSUnavailableError({
                request: "GET /events",
                status: error.status,
                reason: error.reason,
                retryAfter: error.retryAfter,
                attempts
              })
            case "BadBody":
              return new WorkOSResponseError({
                request: "GET /events",
                cause: error.cause,
                attempts
              })
            default:
              return error
          }
        })
      )
    })
  }

  return { baseUrl, listEvents } satisfies Service
}

/**
 * Jittered exponential backoff, capped at `maxDelay`; a failure that carries a
 * `Retry-After` waits at least that long, up to `maxRetryAfter`.
 */
const retrySchedule = (policy: RetryPolicy) => {
  const maxDelay = Duration.fromInputUnsafe(policy.maxDelay)
  const maxRetryAfter = Duration.fromInputUnsafe(policy.maxRetryAfter)
  return Schedule.exponential(policy.baseDelay, 2).pipe(
    Schedule.jittered,
    Schedule.modifyDelay(({ input, duration }) => {
      const backoff = Duration.min(duration, maxDelay)
      const asked = input instanceof Transient ? input.retryAfter : undefined
      return Effect.succeed(
        asked === undefined ? backoff : Duration.max(backoff, Duration.min(asked, maxRetryAfter))
      )
    })
  )
}

const isTransientStatus = (status: number): boolean =>
  status === 408 ||
  status === 429 ||
  status === 500 ||
  status === 502 ||
  status === 503 ||
  status === 504

/**
 * The page of a reply, or why not. A plain function, not a generator: with a generator
 * made for each page, pages outlived young-generation collections (~65% of what the
 * read path allocated was promoted to the old generation, ~10% without; measured
 * with `--trace-gc-nvp` over bench/backfill.ts's stand-in).
 */
const readReply = (
  request: string,
  reply: Reply
): Effect.Effect<EventList.EventList, Transient | BadBody | WorkOSApiError> => {
  const { status, text } = reply
  if (status >= 200 && status < 300) {
    const page = EventList.decodeJson(text)
    return Result.isSuccess(page)
      ? Effect.succeed(page.success)
      : Effect.fail(new BadBody({ cause: page.failure }))
  }
  if (isTransientStatus(status))
    return Effect.clockWith((clock) =>
      Effect.fail(
        new Transient({
          status,
          reason: `${status}${excerpt(text)}`,
          retryAfter: retryAfterOf(reply.header("retry-after"), clock.currentTimeMillisUnsafe())
        })
      )
    )
  return Effect.fail(apiError(request, reply))
}

/** A 429 slows the shared budget down for everyone, for as long as its `Retry-After` asks. */
const throttleOn429 = (budget: RequestBudget, reply: Reply): Effect.Effect<void> =>
  reply.status !== 429
    ? Effect.void
    : Effect.clockWith((clock) =>
        Effect.sync(() => {
          const now = clock.currentTimeMillisUnsafe()
          const asked = retryAfterOf(reply.header("retry-after"), now)
          budget.throttle(asked === undefined ? undefined : Duration.toMillis(asked), Date.now())
        })
      )

/** The `Retry-After` of a response as a delay from now, or undefined when absent or invalid. */
const retryAfterOf = (header: string | undefined, now: number): Duration.Duration | undefined => {
  if (header === undefined) return undefined
  const parsed = Headers.parseRetryAfter(header)
  return Result.isSuccess(parsed) ? Headers.retryAfterDelay(parsed.success, now) : undefined
}

const transportFailure = (error: HttpClientError.HttpClientError): Transient => {
  // Named from the reason and its cause only: the request (and so the API key) stays out.
  const cause: any = "cause" in error.reason ? error.reason.cause : undefined
  // The system's message names the host (`getaddrinfo ENOTFOUND api.workos.com`,
  // `connect ECONNREFUSED 10.0.0.1:443`); the bare code when there is none.
  const system = cause?.cause
  const detail =
    (typeof system?.message === "string" && system.message !== "" ? system.message : undefined) ??
    system?.code ??
    cause?.message
  return new Transient({
    status: undefined,
    reason: `${error.reason._tag}${detail === undefined ? "" : `: ${detail}`}`,
    retryAfter: undefined
  })
}

const excerpt = (text: string): string =>
  text.length === 0 ? "" : `: ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`

/** Reads WorkOS's error body (`{ message, code?, errors? }`); a body of another shape is quoted. */
const apiError = (request: string, reply: Reply): WorkOSApiError => {
  const text = reply.text
  let body: any
  try {
    body = JSON.parse(text)
  } catch {
    body = undefined
  }
  const isRecord = typeof body === "object" && body !== null
  const detail =
    isRecord && typeof body.message === "string"
      ? body.message
      : text.length > 0
        ? excerpt(text).slice(2)
        : "(empty body)"
  const errors: Array<FieldError> =
    isRecord && Array.isArray(body.errors)
      ? body.errors
          .filter((e: any) => typeof e === "object" && e !== null)
          .map((e: any) => ({ code: String(e.code), field: String(e.field) }))
      : []
  return new WorkOSApiError({
    request,
    status: reply.status,
    detail,
    code: isRecord && typeof body.code === "string" ? body.code : undefined,
    errors,
    requestId: reply.header("x-request-id")
  })
}

// ---------------------------------------------------------------------------
// Layers

/** Complete options from what a layer was given; the API key, when not given, from `WORKOS_API_KEY`. */
const resolve = (options: LayerOptions): Effect.Effect<Options, Config.ConfigError> =>
  Effect.gen(function* () {
    const apiKey = options.apiKey ?? (yield* Config.Redacted("WORKOS_API_KEY"))
    return {
      apiKey,
      baseUrl: options.baseUrl ?? defaults.baseUrl,
      timeout: options.timeout ?? defaults.timeout,
      retry: { ...defaults.retry, ...options.retry },
      budget: options.budget
    }
  })

/**
 * The client, from options, over the `HttpClient` beneath it; the API key, when not
 * given, is read from the `WORKOS_API_KEY` config (an environment variable by
 * default) as `Redacted`.
 */
export const layer = (
  options: LayerOptions = {}
): Layer.Layer<WorkOS, Config.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(WorkOS, Effect.flatMap(resolve(options), make))

/** The same client over Node's own `http`/`https` (see `makeNode`): no `HttpClient` needed. */
export const layerNode = (options: LayerOptions = {}): Layer.Layer<WorkOS, Config.ConfigError> =>
  Layer.effect(WorkOS, Effect.flatMap(resolve(options), makeNode))
