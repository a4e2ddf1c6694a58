/** `workos-relay demo`: the whole relay against a WorkOS stand-in, no config needed. */
import { Command, Flag } from "effect/cli"
import { lazy } from "./shared.ts"

export const demo = Command.make(
  "demo",
  {
    duration: Flag.String("duration").pipe(
      Flag.withDefault("20s"),
      Flag.withDescription('How long to run ("20s"; 0 runs until Ctrl-C)')
    ),
    rate: Flag.Finite("rate").pipe(
      Flag.withDefault(4),
      Flag.withDescription("New events per second (0: only the first one of every type)")
    )
  },
  lazy(
    () => import("./handlers/demo.ts"),
    (m) => m.demo
  )
).pipe(
  Command.withDescription(
    "Run the whole relay against an in-process WorkOS stand-in (no config, no API key)"
  )
)
