/**
 * WorkOS's list APIs, paged: organizations, users, organization memberships,
 * directories, directory users, directory groups and connections (written against
 * WorkOS's OpenAPI spec: `GET /<resource>?limit&after&...` answering
 * `{ data: [...], list_metadata: { before, after } }`).
 *
 * Objects are checked, never rebuilt: each is the very object WorkOS sent, with an
 * `id` and the resource's `object` name, unknown fields kept. Transient failures (408,
 * 429, 5xx, transport errors) are retried with jittered backoff that honours
 * `Retry-After`; what WorkOS refuses is a `WorkOSApiError` with its message.
 */

import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { Headers, HttpClient, HttpClientRequest } from "effect/http"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import {
  type Options,
  userAgent,
  WorkOSApiError,
  type WorkOSError,
  WorkOSUnavailableError
} from "./WorkOS.ts"

/** A resource WorkOS lists, with its path and the `object` name of its items. */
export const resources = {
  organizations: { path: "/organizations", object: "organization" },
  users: { path: "/user_management/users", object: "user" },
  organization_memberships: {
    path: "/user_management/organization_memberships",
    object: "organization_membership"
  },
  directories: { path: "/directories", object: "directory" },
  directory_users: { path: "/directory_users", object: "directory_user" },
  directory_groups: { path: "/directory_groups", object: "directory_group" },
  connections: { path: "/connections", object: "connection" }
} as const
export type Resource = keyof typeof resources

/** An object as WorkOS lists it: its `id`, its `object` name, and every other field as sent. */
export interface Listed<O extends string = string> {
  readonly id: string
  readonly object: O
  readonly [field: string]: unknown
}

/** The filters each list takes (`directory_users` needs `directory` or `group`, say). */
export interface Filters {
  readonly organizations?: { readonly domains?: string }
  readonly users?: { readonly organization_id?: string; readonly email?: string }
  readonly organization_memberships?: {
    readonly organization_id?: string
    readonly user_id?: string
    readonly statuses?: string
  }
  readonly directories?: { readonly organization_id?: string }
  readonly directory_users?: { readonly directory?: string; readonly group?: string }
  readonly directory_groups?: { readonly directory?: string; readonly user?: string }
  readonly connections?: { readonly organization_id?: string }
}

export interface Page<R extends Resource> {
  readonly data: ReadonlyArray<Listed<(typeof resources)[R]["object"]>>
  /** The cursor of the next page; null on the last. */
  readonly after: string | null
}

/** A page that is not a list of this resource's objects: says where. */
const badPage = (request: string, reason: string) =>
  new WorkOSUnavailableError({
    request,
    status: 200,
    reason: `the answer is not a list page: ${reason}`,
    retryAfter: undefined,
    attempts: 1
  })

/** Checks a page's body, keeping every object as sent. */
export const decodePage = <R extends Resource>(
  resource: R,
  request: string,
  body: unknown
): Effect.Effect<Page<R>, WorkOSUnavailableError> => {
  const page = body as { data?: unknown; list_metadata?: { after?: unknown } }
  if (typeof page !== "object" || page === null || !Array.isArray(page.data))
    return Effect.fail(badPage(request, "no data array"))
  const expected = resources[resource].object
  for (const [i, item] of page.data.entries()) {
    if (typeof item?.id !== "string")
      return Effect.fail(badPage(request, `data[${i}].id is not a string`))
    if (item.object !== expected)
      return Effect.fail(
        badPage(request, `data[${i}].object is ${JSON.stringify(item.object)}, not "${expected}"`)
      )
  }
  const after = page.list_metadata?.after
  return Effect.succeed({
    data: page.data as Page<R>["data"],
    after: typeof after === "string" && after !== "" ? after : null
  })
}

export interface Lists {
  /** One page of a list. */
  readonly page: <R extends Resource>(
    resource: R,
    options?: {
      readonly filters?: NonNullable<Filters[R]>
      readonly after?: string
      readonly limit?: number
    }
  ) => Effect.Effect<Page<R>, WorkOSError>
  /** Every object of a list, page after page (100 per page). */
  readonly all: <R extends Resource>(
    resource: R,
    filters?: NonNullable<Filters[R]>
  ) => Stream.Stream<Listed<(typeof resources)[R]["object"]>, WorkOSError>
}

/** A `Retry-After` header in ms from now; undefined when absent or invalid. */
const retryAfterMs = (header: string | undefined): number | undefined => {
  if (header === undefined) return undefined
  const parsed = Headers.parseRetryAfter(header)
  return Result.isSuccess(parsed)
    ? Duration.toMillis(Headers.retryAfterDelay(parsed.success, Date.now()))
    : undefined
}

/**
 * The list calls over the `HttpClient` in context, with the client's options (key, base
 * URL, retries, and the request budget each attempt waits for when given).
 */
export const make = (options: Options): Effect.Effect<Lists, never, HttpClient.HttpClient> =>
  Effect.map(HttpClient.HttpClient, (http) => {
    const base = options.baseUrl.replace(/\/+$/, "")
    const budget = options.budget
    // Every attempt (a retry too) waits for the key's budget; a 429 slows it for everyone.
    const paced =
      budget === undefined
        ? http
        : http.pipe(
            HttpClient.transformResponse((response) => Effect.andThen(budget.take, response)),
            HttpClient.tap((response) =>
              response.status === 429
                ? Effect.sync(() => budget.throttle(retryAfterMs(response.headers["retry-after"])))
                : Effect.void
            )
          )
    const client = paced.pipe(
      HttpClient.retryTransient({
        schedule: Schedule.exponential(options.retry.baseDelay, 2).pipe(Schedule.jittered),
        times: options.retry.times
      })
    )
    const page: Lists["page"] = (resource, pageOptions = {}) => {
      const path = resources[resource].path
      const request = `GET ${path}`
      const query: Array<[string, string]> = [["limit", String(pageOptions.limit ?? 100)]]
      if (pageOptions.after !== undefined) query.push(["after", pageOptions.after])
      for (const [k, v] of Object.entries(pageOptions.filters ?? {}))
        if (typeof v === "string") query.push([k, v])
      return client
        .execute(
          HttpClientRequest.get(`${base}${path}`, {
            urlParams: query,
            acceptJson: true,
            headers: { "user-agent": userAgent }
          }).pipe(HttpClientRequest.bearerToken(Redacted.value(options.apiKey)))
        )
        .pipe(
          Effect.provideService(HttpClient.TracerPropagationEnabled, false),
          Effect.flatMap((response) =>
            Effect.flatMap(response.text, (text) => {
              if (response.status >= 200 && response.status < 300) {
                let body: unknown
                try {
                  body = JSON.parse(text)
                } catch {
                  return Effect.fail(badPage(request, "not JSON"))
                }
                return decodePage(resource, request, body)
              }
              let message = text
              try {
                message = JSON.parse(text).message ?? text
              } catch {}
              return Effect.fail(
                response.status >= 500 || response.status === 429 || response.status === 408
                  ? new WorkOSUnavailableError({
                      request,
                      status: response.status,
                      reason: `${response.status}: ${message}`,
                      retryAfter: undefined,
                      attempts: options.retry.times + 1
                    })
                  : new WorkOSApiError({
                      request,
                      status: response.status,
                      detail: message,
                      code: undefined,
                      errors: [],
                      requestId: response.headers["x-request-id"]
                    })
              )
            })
          ),
          Effect.catchTag("HttpClientError", (error) =>
            Effect.fail(
              new WorkOSUnavailableError({
                request,
                status: undefined,
                reason: error.reason._tag,
                retryAfter: undefined,
                attempts: options.retry.times + 1
              })
            )
          )
        )
    }
    const all: Lists["all"] = (resource, filters) =>
      Stream.paginate(undefined as string | undefined, (after) =>
        Effect.map(
          page(resource, {
            ...(filters === undefined ? {} : { filters }),
            ...(after === undefined ? {} : { after })
          }),
          (p) => [p.data, p.after === null ? Option.none() : Option.some(p.after)] as const
        )
      )
    return { page, all }
  })
