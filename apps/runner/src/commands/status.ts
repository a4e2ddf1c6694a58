/** `workos-relay status`: per sink its cursor, lag and dead letters; who holds the lease. */
import { Command } from "effect/cli"
import { configFlag, lazy } from "./shared.ts"

export const status = Command.make(
  "status",
  { config: configFlag },
  lazy(
    () => import("./handlers/status.ts"),
    (m) => m.status
  )
).pipe(
  Command.withDescription(
    "Per sink: cursor, lag in events and time, dead letters; and who holds the lease"
  )
)
