/** `workos-relay config schema`: the JSON Schema of the config file. */
import { Command } from "effect/cli"
import { lazy } from "./shared.ts"

const configSchema = Command.make(
  "schema",
  {},
  lazy(
    () => import("./handlers/config.ts"),
    (m) => m.configSchema
  )
).pipe(Command.withDescription("Print a JSON Schema of the config file, sinks included"))

export const configCommand = Command.make("config").pipe(
  Command.withDescription("About the config file"),
  Command.withSubcommands([configSchema])
)
