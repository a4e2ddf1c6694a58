/**
 * The built-in `console` sink: one readable line per event on stdout, such as
 *
 *   2026-11-23T19:04:11.120Z  dsync.user.created  event_01J...  org_01H...  user: ada@example.com
 *
 * It is what the demo prints to, and a handy way to see what a filter selects.
 */

import { type Event, Sink } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { organizationOf } from "./pipeline/Filter.ts"

export const Config = Schema.Struct({
  /** `line` (default): one readable line per event; `json`: the event as WorkOS sent it, one JSON per line. */
  format: Schema.optionalKey(Schema.Literals(["line", "json"])),
  /** Prefix each line with the sink's name. */
  showSink: Schema.optionalKey(Schema.Boolean)
})

/** The first useful bits of a payload, for a human skimming the output. */
const summary = (event: Event.Any): string => {
  const data = event.data as Record<string, unknown>
  const parts: Array<string> = []
  const email = data.email ?? (data.user as any)?.email ?? (data.emails as any)?.[0]?.value
  if (typeof email === "string") parts.push(email)
  const name =
    data.name ??
    (data.first_name !== undefined
      ? `${data.first_name} ${data.last_name ?? ""}`.trim()
      : undefined)
  if (typeof name === "string" && name !== "") parts.push(JSON.stringify(name))
  const state = data.state ?? data.status
  if (typeof state === "string") parts.push(`state=${state}`)
  return parts.join("  ")
}

/** Formats one event as a line. */
export const formatLine = (event: Event.Any): string =>
  [event.created_at, event.event.padEnd(34), event.id, organizationOf(event) ?? "-", summary(event)]
    .join("  ")
    .trimEnd()

/**
 * Writes to stdout, done once the text is handed to the system. When stdout is gone
 * (`workos-relay run | head`: the reader exited), the sink stops, and the events it
 * could not print stay after its checkpoint; the other sinks go on.
 */
const write = (text: string): Effect.Effect<void, Sink.SinkFatal> =>
  Effect.callback((resume) => {
    if (process.stdout.destroyed) return resume(Effect.fail(stdoutClosed("it is closed")))
    process.stdout.write(text, (error) =>
      resume(error ? Effect.fail(stdoutClosed(error.message)) : Effect.void)
    )
  })

const stdoutClosed = (why: string) =>
  new Sink.SinkFatal({ reason: `cannot print to stdout: ${why}` })

export const definition = Sink.define({
  type: "console",
  config: Config,
  make: (config, context) =>
    Effect.succeed({
      batch: { maxEvents: 100, maxWait: "100 millis" },
      deliver: (batch) => {
        const prefix = config.showSink === true ? `[${context.name}] ` : ""
        const text = batch
          .map(
            (event) =>
              prefix + (config.format === "json" ? JSON.stringify(event) : formatLine(event))
          )
          .join("\n")
        return write(`${text}\n`).pipe(Effect.as(batch.map(() => Sink.delivered)))
      }
    })
})
