/**
 * `workos-relay tap`: a live tail of a running relay's events, from its console.
 * What the command does; its flags and help are in ../tap.ts, which loads
 * this module only when the command runs (`--help` does without it).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { isLoopback } from "../../config/Console.ts"
import { load } from "../../config/Load.ts"
import * as TapClient from "../../console/TapClient.ts"
import { errorLogsOnly, out, RunFailed, UsageError } from "../shared.ts"

export const tap = ({
  config: file,
  sink,
  events,
  json
}: {
  readonly config: string
  readonly sink: Option.Option<string>
  readonly events: Option.Option<string>
  readonly json: boolean
}) =>
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
      const host = ["0.0.0.0", "::", ""].includes(config.http.host) ? "127.0.0.1" : config.http.host
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
