/** `workos-relay tap`: a live tail of a running relay's events, from its console. */
import { Command, Flag } from "effect/cli"
import { configFlag, lazy } from "./shared.ts"

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
  lazy(
    () => import("./handlers/tap.ts"),
    (m) => m.tap
  )
).pipe(
  Command.withDescription(
    "Live tail of the events a running relay reads (through its console): one line per event, or JSON lines"
  )
)
