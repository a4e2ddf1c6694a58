/** `workos-relay tap`: a live tail of a running relay's events, from its console. */
import { Command, Flag } from "effect/cli"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { isLoopback } from "../config/Console.ts"
import { load } from "../config/Load.ts"
import * as TapClient from "../console/TapClient.ts"
import { configFlag, errorLogsOnly, out, RunFailed, UsageError } from "./shared.ts"

export const tap = Command.make(
  "tap",
  {
    config: configFlag,
    sink: Flag.String("sink").pipe(
      Flag.optional,
      Flag.withDescription("Only the events this sink's filter passes (default: every event read)")
    ),
    events: Flag.String("events").pipe(
      Flag.optional,
      Flag.withDescription("Only events of this pattern, e.g. user.* or dsync.group.*")
    ),
    json: Flag.Boolean("json").pipe(
      Flag.withDefault(false),
      Flag.withDescription("One JSON line per event (the event as WorkOS sent it)")
    )
  },
  ({ config: file, sink, events, json }) =>
    errorLogsOnly(
      Effect.gen(function* () {
        const config = yield* load(file)
        if (config.http === undefined || config.console === undefined)
          return yield* Effect.fail(
            new UsageError({
              reason:
                "tap reads a running relay's console: its config needs http.address and a console section"
            })
          )
        if (config.http.port === 0)
          return yield* Effect.fail(
            new UsageError({
              reason:
                "http.address has port 0 (any free port): tap cannot know where the relay listens; give a fixed port"
            })
          )
        // A relay listening on every address is reached here on loopback.
        const host = ["0.0.0.0", "::", ""].includes(config.http.host)
          ? "127.0.0.1"
          : config.http.host
        const base = `http://${host.includes(":") ? `[${host}]` : host}:${config.http.port}`
        yield* TapClient.read(
          {
            base,
            token: isLoopback(host) ? undefined : config.console.token,
            sink: Option.getOrUndefined(sink),
            events: Option.getOrUndefined(events)
          },
          (event) =>
            process.stdout.write(`${json ? JSON.stringify(event.event) : TapClient.line(event)}\n`)
        ).pipe(Effect.mapError((e) => new RunFailed({ reason: e.message })))
        yield* out("the relay stopped")
      })
    )
).pipe(
  Command.withDescription(
    "Live tail of the events a running relay reads (through its console): one line per event, or JSON lines"
  )
)
