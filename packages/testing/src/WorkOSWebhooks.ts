/**
 * Webhooks from the WorkOS stand-in: each event appended to it is posted, signed as
 * WorkOS signs (`WorkOS-Signature: t=<ms>, v1=<hmac>` over the raw body), to a URL,
 * with WorkOS's delivery behaviour under the test's control: retries of a failed
 * delivery, deliveries lost for good, duplicated, delayed (so out of order).
 *
 * ```ts
 * const standIn = yield* WorkOSStandIn.make()
 * const sender = WorkOSWebhooks.sendTo(standIn, { url, secret, lose: 0.2, duplicate: 0.2, maxDelayMs: 500 })
 * standIn.appendGenerated(10)   // each posted to url, as configured
 * await sender.idle()
 * ```
 */
import { Webhook } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import { prng } from "./internal/ulid.ts"

/** What webhooks are sent from: the stand-in (its `onAppend`). */
export interface AppendSource {
  readonly onAppend: (
    listener: (event: { readonly id: string; readonly event: string }, json: string) => void
  ) => () => void
}

export interface Behaviour {
  /** Share of events whose webhook is never sent (default 0). */
  readonly lose?: number | undefined
  /** Share of events whose webhook is sent twice (default 0). */
  readonly duplicate?: number | undefined
  /** Each send waits a random time up to this (ms, default 0): later events may arrive first. */
  readonly maxDelayMs?: number | undefined
  /** Attempts per delivery while the endpoint fails (non-2xx or no answer; default 6, as WorkOS). */
  readonly attempts?: number | undefined
  /** Wait between attempts (ms, default 50; WorkOS waits minutes to days). */
  readonly retryDelayMs?: number | undefined
  /** Seed of the draws (default 1). */
  readonly seed?: number | undefined
}

export interface Delivery {
  readonly id: string
  readonly attempt: number
  /** The endpoint's status, or 0 when it did not answer. */
  readonly status: number
  readonly at: number
}

export interface Sender {
  /** Every attempt so far, in the order answered. */
  readonly deliveries: ReadonlyArray<Delivery>
  /** Ids of events whose webhook was lost on purpose. */
  readonly lost: ReadonlyArray<string>
  /** Resolves once no delivery is in flight or waiting. */
  readonly idle: () => Promise<void>
  /** Stops sending webhooks of events appended from now on. */
  readonly stop: () => void
}

/** Posts a webhook of every event appended to `standIn` from now on to `url`. */
export const sendTo = (
  standIn: AppendSource,
  options: Behaviour & {
    readonly url: string
    readonly secret: string
    /** Only events this says yes to (default: every one). */
    readonly accepts?: ((type: string) => boolean) | undefined
  }
): Sender => {
  const random = prng(options.seed ?? 1)
  const deliveries: Array<Delivery> = []
  const lost: Array<string> = []
  let inFlight = 0
  let waiters: Array<() => void> = []
  const settle = () => {
    if (--inFlight > 0) return
    const done = waiters
    waiters = []
    for (const resolve of done) resolve()
  }

  const post = async (id: string, json: string): Promise<void> => {
    const attempts = options.attempts ?? 6
    for (let attempt = 1; attempt <= attempts; attempt++) {
      // Signed afresh at each attempt, as WorkOS does.
      const signature = await Effect.runPromise(
        Webhook.sign({ payload: json, secret: options.secret })
      )
      let status = 0
      try {
        const response = await fetch(options.url, {
          method: "POST",
          headers: { "content-type": "application/json", "workos-signature": signature },
          body: json
        })
        status = response.status
        await response.arrayBuffer()
      } catch {
        status = 0
      }
      deliveries.push({ id, attempt, status, at: Date.now() })
      if (status >= 200 && status < 300) return
      await sleep(options.retryDelayMs ?? 50)
    }
  }

  const send = (id: string, json: string) => {
    inFlight++
    const delay = Math.floor(random() * (options.maxDelayMs ?? 0))
    void sleep(delay)
      .then(() => post(id, json))
      .finally(settle)
  }

  const stop = standIn.onAppend((event, json) => {
    if (options.accepts !== undefined && !options.accepts(event.event)) return
    if (random() < (options.lose ?? 0)) {
      lost.push(event.id)
      return
    }
    send(event.id, json)
    if (random() < (options.duplicate ?? 0)) send(event.id, json)
  })

  return {
    deliveries,
    lost,
    idle: () =>
      inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve)),
    stop
  }
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => (ms <= 0 ? resolve() : setTimeout(resolve, ms)))

// ---------------------------------------------------------------------------
// `/webhook_endpoints`, as WorkOS's API (create, list, update)

export interface Endpoint {
  readonly object: "webhook_endpoint"
  readonly id: string
  endpoint_url: string
  readonly secret: string
  status: "enabled" | "disabled"
  events: Array<string>
  readonly created_at: string
  updated_at: string
}

export interface Endpoints {
  /** The registered endpoints, as the API shows them. */
  readonly list: () => ReadonlyArray<Endpoint>
  /** How deliveries to registered endpoints behave (retries, lost, duplicated, late); change it any time before registering. */
  behaviour: Behaviour
  /** Every registered endpoint's sender, by endpoint id. */
  readonly senders: ReadonlyMap<string, Sender>
  /** Answers a request under `/webhook_endpoints`; false when the path is not one. */
  readonly handle: (
    method: string,
    path: string,
    body: string
  ) => { readonly status: number; readonly body: unknown } | undefined
}

/** The endpoints API of a stand-in: registered, enabled endpoints get signed webhooks of the events they subscribe to. */
export const endpoints = (
  source: AppendSource,
  knownTypes: ReadonlySet<string>,
  seed = 1
): Endpoints => {
  const random = prng(seed ^ 0x2545f491)
  const store: Array<Endpoint> = []
  const senders = new Map<string, Sender>()
  const token = (prefix: string, length: number) =>
    `${prefix}_${Array.from({ length }, () => "0123456789ABCDEFGHJKMNPQRSTVWXYZ"[Math.floor(random() * 32)]).join("")}`
  const invalid = (code: string, message: string, errors?: unknown) => ({
    status: 422,
    body: { code, message, ...(errors === undefined ? {} : { errors }) }
  })
  const checkEvents = (events: unknown) => {
    if (!Array.isArray(events) || events.some((e) => typeof e !== "string"))
      return invalid("invalid_request_parameters", "Validation failed.", [
        { code: "invalid_type", message: "events must be an array of strings" }
      ])
    const unknown = events.filter((e) => !knownTypes.has(e))
    return unknown.length === 0
      ? undefined
      : invalid(
          "invalid_request_parameters",
          "Validation failed.",
          unknown.map((e) => ({ code: "unknown_event_type", message: `Invalid enum value: ${e}` }))
        )
  }
  const validUrl = (url: unknown) =>
    typeof url === "string" &&
    (URL.parse(url)?.protocol === "https:" || URL.parse(url)?.protocol === "http:")
  const subscribe = (endpoint: Endpoint) => {
    senders.get(endpoint.id)?.stop()
    if (endpoint.status !== "enabled") return
    senders.set(
      endpoint.id,
      sendTo(source, {
        ...api.behaviour,
        url: endpoint.endpoint_url,
        secret: endpoint.secret,
        accepts: (type) => endpoint.events.includes(type)
      })
    )
  }
  const api: Endpoints = {
    list: () => store,
    behaviour: {},
    senders,
    handle: (method, path, text) => {
      const match = /^\/webhook_endpoints(?:\/([^/]+))?$/.exec(path)
      if (match === null) return undefined
      let body: any = {}
      if (text !== "") {
        try {
          body = JSON.parse(text)
        } catch {
          return { status: 400, body: { message: "Malformed JSON" } }
        }
      }
      const id = match[1]
      if (id === undefined && method === "GET")
        return {
          status: 200,
          body: { object: "list", data: store, list_metadata: { before: null, after: null } }
        }
      if (id === undefined && method === "POST") {
        if (!validUrl(body.endpoint_url))
          return invalid("invalid_url", "Request could not be processed.")
        const bad = checkEvents(body.events)
        if (bad !== undefined) return bad
        if (store.some((e) => e.endpoint_url === body.endpoint_url))
          return {
            status: 409,
            body: { code: "duplicate_endpoint", message: "Request could not be processed." }
          }
        const now = new Date().toISOString()
        const endpoint: Endpoint = {
          object: "webhook_endpoint",
          id: token("we", 26),
          endpoint_url: body.endpoint_url,
          secret: token("whsec", 26),
          status: "enabled",
          events: [...body.events],
          created_at: now,
          updated_at: now
        }
        store.push(endpoint)
        subscribe(endpoint)
        return { status: 201, body: endpoint }
      }
      if (id !== undefined && method === "PATCH") {
        const endpoint = store.find((e) => e.id === id)
        if (endpoint === undefined) return { status: 404, body: { message: "Not Found" } }
        if (body.endpoint_url !== undefined) {
          if (!validUrl(body.endpoint_url))
            return invalid("invalid_url", "Request could not be processed.")
          endpoint.endpoint_url = body.endpoint_url
        }
        if (body.events !== undefined) {
          const bad = checkEvents(body.events)
          if (bad !== undefined) return bad
          endpoint.events = [...body.events]
        }
        if (body.status === "enabled" || body.status === "disabled") endpoint.status = body.status
        endpoint.updated_at = new Date().toISOString()
        subscribe(endpoint)
        return { status: 200, body: endpoint }
      }
      return { status: 405, body: { message: `${method} is not allowed on ${path}` } }
    }
  }
  return api
}
