/** `workos-relay validate`: check a config file, and with --check-connections what it points at. */
import { Command, Flag } from "effect/cli"
import { configFlag, lazy } from "./shared.ts"

export const validate = Command.make(
  "validate",
  {
    config: configFlag,
    checkConnections: Flag.Boolean("check-connections").pipe(
      Flag.withDefault(false),
      Flag.withDescription("Also reach WorkOS, the state store and every sink")
    )
  },
  lazy(
    () => import("./handlers/validate.ts"),
    (m) => m.validate
  )
).pipe(
  Command.withDescription("Check a config file (and, with --check-connections, what it points at)")
)
