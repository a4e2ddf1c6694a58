/**
 * One page of `GET /events`: `{ object: "list", data, list_metadata: { after } }`.
 * Each event is decoded on its own, so one bad event never fails the page.
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import { type Any, decode, type EventDecodeError } from "./Event.ts"
import { isObject } from "./internal/Check.ts"

export interface EventList {
  readonly object: "list"
  /** Each event of the page, in the order WorkOS sent them: decoded, or why not. */
  readonly data: ReadonlyArray<Result.Result<Any, EventDecodeError>>
  /** The id to pass as `after` for the next page; `null` at the end of the list. */
  readonly list_metadata: { readonly after: string | null }
}

/** The response is not an event list at all: the page cannot be read. */
export class EventListDecodeError extends Data.TaggedError("EventListDecodeError")<{
  readonly reason: string
  /** The first characters of the body, for the error report. */
  readonly excerpt: string
}> {
  override get message(): string {
    return `WorkOS returned a response that is not an event list: ${this.reason} (body starts with ${JSON.stringify(this.excerpt)})`
  }
}

const excerptOf = (text: string): string => (text.length > 200 ? `${text.slice(0, 200)}…` : text)

/** Decodes a page from the JSON text of a response body. */
export const decodeJson = (text: string): Result.Result<EventList, EventListDecodeError> => {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch (error) {
    return Result.fail(
      new EventListDecodeError({
        reason: `not JSON (${(error as Error).message})`,
        excerpt: excerptOf(text)
      })
    )
  }
  return decodeWith(body, () => excerptOf(text))
}

/** Decodes a page from an already parsed body. */
export const decodeUnknown = (body: unknown): Result.Result<EventList, EventListDecodeError> =>
  decodeWith(body, () => excerptOf(JSON.stringify(body) ?? String(body)))

const decodeWith = (
  body: unknown,
  excerpt: () => string
): Result.Result<EventList, EventListDecodeError> => {
  const reason = envelopeProblem(body)
  if (reason !== undefined)
    return Result.fail(new EventListDecodeError({ reason, excerpt: excerpt() }))
  const page = body as { data: Array<unknown>; list_metadata: { after: string | null } }
  const data = new Array<Result.Result<Any, EventDecodeError>>(page.data.length)
  for (let i = 0; i < page.data.length; i++) data[i] = decode(page.data[i])
  return Result.succeed({
    object: "list",
    data,
    list_metadata: { after: page.list_metadata.after }
  })
}

const envelopeProblem = (body: unknown): string | undefined => {
  if (!isObject(body)) return "expected a JSON object"
  if (body.object !== "list")
    return `expected "object" to be "list", got ${JSON.stringify(body.object)}`
  if (!Array.isArray(body.data)) return `expected "data" to be an array`
  if (!isObject(body.list_metadata)) return `expected "list_metadata" to be an object`
  const after = body.list_metadata.after
  if (after !== null && typeof after !== "string")
    return `expected "list_metadata.after" to be a string or null`
  return undefined
}
