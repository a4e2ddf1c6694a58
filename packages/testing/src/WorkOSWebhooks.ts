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
import type { StandIn } from "./WorkOSStandIn.ts"

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
  standIn: StandIn,
  options: Behaviour & { readonly url: string; readonly secret: string }
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
