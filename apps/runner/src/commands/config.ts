/** `workos-relay config schema`: the JSON Schema of the config file. */
import type { Sink } from "@workos-relay/core"
import { Command } from "effect/cli"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { jsonSchema } from "../config/JsonSchema.ts"
import * as Registry from "../Registry.ts"
import { out } from "./shared.ts"

const configSchema = Command.make("schema", {}, () =>
  Effect.gen(function* () {
    const definitions: Array<Sink.Definition> = [...Object.values(Registry.builtins)]
    for (const type of Object.keys(Registry.packages)) {
      const resolved = yield* Effect.result(Registry.resolve({ type }, process.cwd()))
      if (Result.isSuccess(resolved)) definitions.push(resolved.success)
      else process.stderr.write(`note: ${resolved.failure}; its options are not in the schema\n`)
    }
    yield* out(JSON.stringify(jsonSchema(definitions), null, 2))
  })
).pipe(Command.withDescription("Print a JSON Schema of the config file, sinks included"))

export const configCommand = Command.make("config").pipe(
  Command.withDescription("About the config file"),
  Command.withSubcommands([configSchema])
)
