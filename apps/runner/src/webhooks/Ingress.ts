/**
 * `POST /webhooks/workos` (the path is configurable): checks that a delivery came
 * from WorkOS, then rings the doorbell. It never delivers the webhook's payload: the
 * reader fetches the event from the Events API, in order, with its cursor.
 *
 * Checks, in order: the source address (when `allowedSources` is set; behind a proxy
 * listed in `trustedProxies`, the client address from `X-Forwarded-For`), then
 * `WorkOS-Signature` over the raw body against each configured secret, within the
 * tolerance. Answers 200 at once for a valid delivery, 403 for a source not allowed,
 * 400 for a malformed header or body, 401 for a signature that does not match or is
 * stale. Each refusal is counted and logged, without the body.
 */
import * as Net from "node:net"
import { Webhook } from "@workos-relay/core"
import * as ByteSize from "effect/ByteSize"
import * as Effect from "effect/Effect"
import { HttpIncomingMessage, HttpRouter, HttpServerResponse } from "effect/http"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type { Routes } from "../http/Server.ts"
import type { Deliveries, Rejection } from "./Deliveries.ts"

/** The addresses WorkOS sends webhooks from (WorkOS's docs). */
export const workosAddresses: ReadonlyArray<string> = [
  "3.217.146.166",
  "23.21.184.92",
  "34.204.154.149",
  "44.213.245.178",
  "44.215.236.82",
  "50.16.203.9",
  "52.1.251.34",
  "52.21.49.187",
  "174.129.36.47"
]

export interface Settings {
  readonly path: `/${string}`
  /** The endpoint's secrets: several while one is rotated. */
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
  /** How far a signature's time may be from now (ms). */
  readonly tolerance: number
  /** Addresses and CIDR ranges deliveries may come from; undefined: any. */
  readonly allowedSources: ReadonlyArray<string> | undefined
  /** Proxies whose `X-Forwarded-For` is believed (addresses and CIDR ranges). */
  readonly trustedProxies: ReadonlyArray<string>
  readonly visibilityDelay: number
  readonly debounce: number
  /** How long an announced event may stay unreturned by the Events API before it is reported (ms). */
  readonly overdueAfter: number
}

/** An address or CIDR range as `BlockList` takes it; undefined when it is neither. */
export const parseRange = (
  text: string
): { address: string; prefix: number | undefined; family: "ipv4" | "ipv6" } | undefined => {
  const [address = "", prefixText, ...rest] = text.trim().split("/")
  const version = Net.isIP(address)
  if (version === 0 || rest.length > 0) return undefined
  const family = version === 4 ? "ipv4" : "ipv6"
  if (prefixText === undefined) return { address, prefix: undefined, family }
  const prefix = Number(prefixText)
  const max = version === 4 ? 32 : 128
  if (!/^\d+$/.test(prefixText) || prefix > max) return undefined
  return { address, prefix, family }
}

const blockList = (ranges: ReadonlyArray<string>): Net.BlockList => {
  const list = new Net.BlockList()
  for (const text of ranges) {
    const range = parseRange(text)
    if (range === undefined) continue
    if (range.prefix === undefined) list.addAddress(range.address, range.family)
    else list.addSubnet(range.address, range.prefix, range.family)
  }
  return list
}

/** `::ffff:1.2.3.4` (IPv4 on a dual-stack socket) as `1.2.3.4`. */
const plain = (address: string): string => {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  return mapped === null ? address : mapped[1]!
}

const contains = (list: Net.BlockList, address: string): boolean => {
  const a = plain(address)
  const version = Net.isIP(a)
  return version !== 0 && list.check(a, version === 4 ? "ipv4" : "ipv6")
}

/**
 * The client's address: the socket's peer, or, when that peer is a trusted proxy, the
 * right-most `X-Forwarded-For` hop that is not a trusted proxy (hops to its left are
 * written by the client and prove nothing).
 */
export const clientAddress = (
  peer: string | undefined,
  forwardedFor: string | undefined,
  trusted: Net.BlockList
): string | undefined => {
  if (peer === undefined || !contains(trusted, peer)) return peer === undefined ? peer : plain(peer)
  const hops = (forwardedFor ?? "")
    .split(",")
    .map((hop) => hop.trim())
    .filter((hop) => hop !== "")
  for (let i = hops.length - 1; i >= 0; i--)
    if (!contains(trusted, hops[i]!)) return plain(hops[i]!)
  return plain(hops[0] ?? peer)
}

/** What a verified delivery announces. */
export interface Announcement {
  readonly id: string
  readonly type: string
  readonly organizationId: string | undefined
}

/**
 * What a delivery rings: a `Doorbell` (one runner), or in cluster mode the doorbell of
 * each source the announcement concerns, on whichever runner reads it.
 */
export interface Bell {
  readonly ring: (announced: Announcement) => Effect.Effect<void>
}

export interface IngressContext {
  readonly settings: Settings
  readonly doorbell: Bell
  readonly deliveries: Deliveries
  /** The event types the relay reads (undefined: every type): others ring nothing. */
  readonly types: ReadonlyArray<string> | undefined
  readonly organizationId: string | undefined
  /**
   * Keeps a new announcement in the state store (its webhook table) before the 2xx:
   * what the store knew of it. Fails when it cannot: the delivery gets 503 and WorkOS
   * sends it again.
   */
  readonly record?: (
    id: string,
    type: string,
    receivedAt: number
  ) => Effect.Effect<"new" | "pending" | "seen", unknown>
}

const maxBody = ByteSize.mebibytes(1)

const answer = (status: number, text: string) =>
  HttpServerResponse.text(text, { status, contentType: "text/plain" })

/** The webhook route, for the runner's HTTP server. */
export const routes = (context: IngressContext): Routes => {
  const { settings, doorbell, deliveries } = context
  const allowed =
    settings.allowedSources === undefined ? undefined : blockList(settings.allowedSources)
  const trusted = blockList(settings.trustedProxies)
  const wanted = context.types === undefined ? undefined : new Set(context.types)
  const refuse = (reason: Rejection, status: number, why: string, from: string | undefined) =>
    Effect.sync(() => deliveries.reject(reason)).pipe(
      Effect.andThen(
        Effect.logWarning(
          `webhook refused (${status}) from ${from ?? "an unknown address"}: ${why}`
        )
      ),
      Effect.as(answer(status, `${why}\n`))
    )
  return HttpRouter.add("POST", settings.path, (request) =>
    Effect.gen(function* () {
      const from = clientAddress(
        Option.getOrUndefined(request.remoteAddress),
        request.headers["x-forwarded-for"],
        trusted
      )
      if (allowed !== undefined && (from === undefined || !contains(allowed, from)))
        return yield* refuse("source", 403, "source address not allowed", from)
      // WorkOS's deliveries are a few KiB: a bigger body is not read into memory.
      const body = yield* request.arrayBuffer.pipe(
        Effect.provideService(HttpIncomingMessage.MaxBodySize, maxBody),
        Effect.option
      )
      if (Option.isNone(body))
        return yield* refuse("body", 400, "could not read the body (at most 1 MiB)", from)
      const payload = new Uint8Array(body.value)
      const checked = yield* Effect.result(
        Webhook.verifySignature({
          payload,
          signature: request.headers["workos-signature"],
          secrets: settings.secrets,
          tolerance: settings.tolerance
        })
      )
      if (checked._tag === "Failure") {
        const error = checked.failure
        return yield* error._tag === "WebhookHeaderError"
          ? refuse("header", 400, error.message, from)
          : error._tag === "WebhookTimestampError"
            ? refuse("stale", 401, error.message, from)
            : refuse("signature", 401, error.message, from)
      }
      const announced = announcement(payload)
      if (announced === undefined)
        return yield* refuse("body", 400, "the signed body is not a WorkOS event (id, event)", from)
      const relevant =
        (wanted === undefined || wanted.has(announced.type)) &&
        (context.organizationId === undefined ||
          announced.organizationId === undefined ||
          announced.organizationId === context.organizationId)
      const receivedAt = Date.now()
      if (!relevant || !deliveries.received(announced.id, announced.type, receivedAt))
        return answer(200, "ok\n")
      if (context.record !== undefined) {
        const kept = yield* Effect.result(context.record(announced.id, announced.type, receivedAt))
        if (kept._tag === "Failure") {
          deliveries.forget(announced.id)
          yield* Effect.logWarning(
            `webhook of event ${announced.id} answered 503 (WorkOS sends it again): it could not be kept in the state store: ${String((kept.failure as Error)?.message ?? kept.failure)}`
          )
          yield* doorbell.ring(announced)
          return answer(503, "could not keep the delivery; send it again\n")
        }
        // Announced and read before a restart: the reader's cursor is past it.
        if (kept.success === "seen") {
          deliveries.alreadyKnown(announced.id)
          return answer(200, "ok\n")
        }
      }
      yield* doorbell.ring(announced)
      return answer(200, "ok\n")
    })
  )
}

/** The id, type and organization a verified body announces; undefined when it is not an event. */
const announcement = (payload: Uint8Array): Announcement | undefined => {
  try {
    const json: any = JSON.parse(new TextDecoder().decode(payload))
    if (typeof json?.id !== "string" || typeof json?.event !== "string") return undefined
    const org = json.data?.organization_id
    return {
      id: json.id,
      type: json.event,
      organizationId: typeof org === "string" ? org : undefined
    }
  } catch {
    return undefined
  }
}
