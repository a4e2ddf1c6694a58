/** `workos-relay replay`: deliver a time range again, without moving live cursors. */
import { Command, Flag } from "effect/cli"
import { configFlag, lazy } from "./shared.ts"

export const replay = Command.make(
  "replay",
  {
    config: configFlag,
    since: Flag.String("since").pipe(
      Flag.withDescription(
        'Events created at or after this time: ISO-8601, or a duration ago ("24h", "7d")'
      )
    ),
    until: Flag.String("until").pipe(
      Flag.optional,
      Flag.withDescription(
        'Events created before this time: ISO-8601, or a duration ago ("1h"); default now'
      )
    ),
    sink: Flag.String("sink").pipe(
      Flag.optional,
      Flag.withDescription("Sink name(s), comma-separated (default every sink)")
    )
  },
  lazy(
    () => import("./handlers/replay.ts"),
    (m) => m.replay
  )
).pipe(
  Command.withDescription(
    "Deliver again the events of a time range to chosen sinks, without moving live cursors"
  )
)
