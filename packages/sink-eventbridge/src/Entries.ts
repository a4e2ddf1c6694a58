/**
 * WorkOS events -> EventBridge `PutEvents` entries, and entries -> requests, by AWS's
 * rules. Pure: no I/O, no SDK; the client module sends what this module builds.
 *
 * AWS's limits (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html):
 * at most 10 entries and 1 MiB per request, where an entry's size is 14 bytes for
 * `Time` plus the UTF-8 bytes of `Source`, `DetailType`, `Detail` and each `Resources`
 * item; a detail-type is at most 128 characters.
 */
import type { Event } from "@workos-relay/core"
import * as Result from "effect/Result"
import type { Config } from "./Config.ts"
import * as DetailType from "./internal/DetailType.ts"

export const maxEntriesPerRequest = 10
export const maxRequestBytes = 1_048_576
export const maxDetailTypeLength = 128
/** What `Time` counts for in an entry's size, whatever the time. */
export const timeBytes = 14

/** One PutEvents entry (the shape of the SDK's `PutEventsRequestEntry`). */
export interface Entry {
  readonly Source: string
  readonly DetailType: string
  readonly Detail: string
  readonly EventBusName: string
  readonly Time?: Date
  readonly Resources?: Array<string>
}

/** An entry with its size by AWS's rule, ready to pack. */
export interface Sized {
  readonly entry: Entry
  readonly size: number
}

const utf8Length = (value: string): number => Buffer.byteLength(value, "utf8")

const isObject = (value: unknown): boolean =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** An entry's size by AWS's rule. */
export const size = (entry: Entry): number => {
  let bytes = entry.Time === undefined ? 0 : timeBytes
  bytes += utf8Length(entry.Source) + utf8Length(entry.DetailType) + utf8Length(entry.Detail)
  for (const resource of entry.Resources ?? []) bytes += utf8Length(resource)
  return bytes
}

/** The parts of the config the encoder needs. */
export type Settings = Pick<Config, "eventBus" | "source" | "detailType" | "detail" | "resources">

/**
 * Makes the encoder for a sink's settings. An event that can never be sent (its
 * detail-type too long, or too large for a request on its own) is a failure with
 * the reason, so that it can be dead-lettered rather than dropped.
 */
export const encoder = (
  settings: Settings
): ((event: Event.Any) => Result.Result<Sized, string>) => {
  const template = DetailType.parse(settings.detailType)
  if (typeof template === "string") throw new Error(template) // the config schema checked it already
  const resources = settings.resources.length === 0 ? undefined : [...settings.resources]
  return (event) => {
    const detailType = DetailType.render(template, event.event)
    if (detailType.length > maxDetailTypeLength) {
      return Result.fail(
        `event ${event.id}: detail-type ${JSON.stringify(detailType)} is ${detailType.length} characters; EventBridge allows at most ${maxDetailTypeLength}`
      )
    }
    // An event that breaks the spec (the sink is raw) may have no data object at all.
    if (settings.detail === "data" && !isObject(event.data)) {
      return Result.fail(
        `event ${event.id} (${event.event}) has no data object to send as the detail (detail: data); it does not match the spec`
      )
    }
    const time = new Date(event.created_at)
    const entry: Entry = {
      Source: settings.source,
      DetailType: detailType,
      // The event exactly as WorkOS sent it: decoding kept every field, unknown ones too,
      // and an event that breaks the spec is the very object WorkOS sent.
      Detail: JSON.stringify(settings.detail === "data" ? event.data : event),
      EventBusName: settings.eventBus,
      ...(Number.isNaN(time.getTime()) ? {} : { Time: time }),
      ...(resources === undefined ? {} : { Resources: resources })
    }
    const bytes = size(entry)
    if (bytes > maxRequestBytes) {
      return Result.fail(
        `event ${event.id} (${event.event}) is ${bytes} bytes as an EventBridge entry; a PutEvents request holds at most ${maxRequestBytes} bytes (1 MiB)`
      )
    }
    return Result.succeed({ entry, size: bytes })
  }
}

/**
 * Packs sized items, in order, into requests of at most 10 entries and 1 MiB.
 * Each item must fit a request on its own (the encoder sees to it).
 */
export const pack = <A extends { readonly size: number }>(
  items: ReadonlyArray<A>
): Array<Array<A>> => {
  const requests: Array<Array<A>> = []
  let current: Array<A> = []
  let bytes = 0
  for (const item of items) {
    if (
      current.length === maxEntriesPerRequest ||
      (current.length > 0 && bytes + item.size > maxRequestBytes)
    ) {
      requests.push(current)
      current = []
      bytes = 0
    }
    current.push(item)
    bytes += item.size
  }
  if (current.length > 0) requests.push(current)
  return requests
}
