/**
 * `workos-relay config schema`: the JSON Schema of the config file.
 * What the command does; its flags and help are in ../config.ts, which loads
 * this module only when the command runs (`--help` does without it).
 */
import type { Sink } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { jsonSchema } from "../../config/JsonSchema.ts"
import * as Registry from "../../Registry.ts"
import { out } from "../shared.ts"

/**
 * The JSON Schema of the config file with the options of every sink that can be
 * loaded from `dir`, and a note for each sink package that cannot.
 */
export const schemaOf = (dir: string) =>
  Effect.gen(function* () {
    const definitions: Array<Sink.Definition> = [...Object.values(Registry.builtins)]
    const notes: Array<string> = []
    for (const type of Object.keys(Registry.packages)) {
      const resolved = yield* Effect.result(Registry.resolve({ type }, dir))
      if (Result.isSuccess(resolved)) definitions.push(resolved.success)
      else notes.push(`${resolved.failure}; its options are not in the schema`)
    }
    return { schema: jsonSchema(definitions), notes }
  })

export const configSchema = () =>
  Effect.gen(function* () {
    const { schema, notes } = yield* schemaOf(process.cwd())
    for (const note of notes) process.stderr.write(`note: ${note}\n`)
    yield* out(JSON.stringify(schema, null, 2))
  })
