/**
 * Reading a running relay's tap (`GET /console/api/tap`) from the terminal: the
 * server-sent events, decoded with the API's Schema, handed over one by one.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Api from "./Api.ts"

export class TapFailed extends Error {}

export interface TapRequest {
  /** The console's base URL, e.g. http://127.0.0.1:9464. */
  readonly base: string
  readonly token?: Redacted.Redacted<string> | undefined
  readonly sink?: string | undefined
  readonly events?: string | undefined
}

/** Reads the tap until interrupted (or the relay stops), calling `onEvent` for each event. */
export const read = (
  request: TapRequest,
  onEvent: (event: Api.TapEvent) => void,
  onListening: () => void = () => {}
): Effect.Effect<void, TapFailed> =>
  Effect.tryPromise({
    try: async (signal) => {
      const query = new URLSearchParams()
      if (request.sink !== undefined) query.set("sink", request.sink)
      if (request.events !== undefined) query.set("events", request.events)
      const response = await fetch(`${request.base}/console/api/tap?${query}`, {
        signal,
        headers:
          request.token === undefined
            ? {}
            : { authorization: `Bearer ${Redacted.value(request.token)}` }
      })
      if (!response.ok) {
        const text = await response.text()
        const error = (() => {
          try {
            return (JSON.parse(text) as { error?: string }).error
          } catch {
            return undefined
          }
        })()
        throw new TapFailed(
          response.status === 404 && error === undefined
            ? `${request.base} has no console: add a console section to the running relay's config`
            : `${request.base}: ${error ?? `HTTP ${response.status}`}`
        )
      }
      const decode = Schema.decodeUnknownSync(Api.TapEvent)
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ""
      while (true) {
        // The relay stopping cuts the stream: the tap's end, not a failure.
        const { value, done } = await reader.read().catch((error) => {
          if (signal.aborted) throw error
          return { value: undefined, done: true as const }
        })
        if (done) return
        buffer += value
        let end = buffer.indexOf("\n\n")
        while (end >= 0) {
          const message = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          end = buffer.indexOf("\n\n")
          if (message.startsWith(": tapping")) onListening()
          else if (message.startsWith("data: ")) onEvent(decode(JSON.parse(message.slice(6))))
        }
      }
    },
    catch: (error) =>
      error instanceof TapFailed
        ? error
        : new TapFailed(`cannot read the tap at ${request.base}: ${(error as Error).message}`)
  })

/** One line per event: when, type, id, organization. */
export const line = (event: Api.TapEvent): string =>
  `${event.createdAt} ${event.type} ${event.id}${event.organizationId === null ? "" : ` ${event.organizationId}`}`
