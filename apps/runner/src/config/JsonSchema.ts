/** The JSON Schema of the config file (`workos-relay config schema`, editors). */
import type { Sink } from "@workos-relay/core"
import * as Schema from "effect/Schema"
import { File, SinkKeys, sourceNamePattern } from "./Schema.ts"

const strict = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(strict)
  if (typeof node !== "object" || node === null) return node
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(node)) out[k] = strict(v)
  if (out.type === "object" && out.additionalProperties === true) out.additionalProperties = false
  return out
}

const omitSinks = <F extends { readonly sinks: unknown }>(fields: F): Omit<F, "sinks"> => {
  const { sinks: _, ...rest } = fields
  return rest
}

const jsonSchemaOf = (schema: Schema.Top): Record<string, unknown> => {
  const document = Schema.toJsonSchemaDocument(Schema.toCodecJson(schema as any) as any)
  return strict({
    ...document.schema,
    ...(Object.keys(document.definitions).length > 0 ? { $defs: document.definitions } : {})
  }) as Record<string, unknown>
}

/**
 * A JSON Schema (draft 2020-12) of the config file, one sink entry schema per known
 * definition (the runner's keys plus the sink's own options, selected by `type`).
 */
export const jsonSchema = (
  definitions: ReadonlyArray<Sink.Definition>
): Record<string, unknown> => {
  const root = jsonSchemaOf(Schema.Struct(omitSinks(File.fields)) as any) as any
  const runnerKeys = (jsonSchemaOf(SinkKeys) as any).properties
  // A `$ref` ("#/$defs/X") points into the root document, so every definition lives
  // there; a sink's own are named after its type, so two sinks cannot clash.
  const defs: Record<string, unknown> = { ...root.$defs }
  const entries = definitions.flatMap((definition) => {
    const prefix = `${definition.type}.`
    const { $defs: own$defs, ...own } = renameRefs(jsonSchemaOf(definition.config), prefix) as any
    for (const [name, def] of Object.entries(own$defs ?? {})) defs[prefix + name] = def
    // Options that are one of several shapes (the audit log's stores): an entry for each.
    const shapes: ReadonlyArray<any> = own.anyOf ?? [own]
    return shapes.map((shape) => ({
      type: "object",
      description: `A sink of type "${definition.type}"`,
      properties: {
        ...runnerKeys,
        ...(shape.properties ?? {}),
        type: { type: "string", enum: [definition.type] }
      },
      required: ["type", ...(shape.required ?? [])],
      additionalProperties: false
    }))
  })
  const custom = {
    type: "object",
    description: "A custom sink: `module` is a path relative to this file or a package name",
    properties: { ...runnerKeys, module: { type: "string" } },
    required: ["module"],
    additionalProperties: true
  }
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "workos-relay config file",
    ...root,
    properties: {
      ...root.properties,
      // Source names as the runner checks them (metric labels and logs show them).
      sources: { ...root.properties.sources, propertyNames: { pattern: sourceNamePattern.source } },
      sinks: {
        type: "object",
        description: "Sinks by name",
        additionalProperties: {
          anyOf: [...entries, custom]
        }
      }
    },
    required: [...(root.required ?? []), "sinks"],
    // One source (`source:`, named default) or several by name (`sources:`), not both.
    oneOf: [{ required: ["source"] }, { required: ["sources"] }],
    ...(Object.keys(defs).length > 0 ? { $defs: defs } : {})
  }
}

/** The schema with every local `$ref` ("#/$defs/X") and `$defs` key given a prefix. */
const renameRefs = (node: unknown, prefix: string): unknown => {
  if (Array.isArray(node)) return node.map((item) => renameRefs(item, prefix))
  if (typeof node !== "object" || node === null) return node
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(node)) {
    if (k === "$ref" && typeof v === "string" && v.startsWith("#/$defs/"))
      out[k] = `#/$defs/${prefix}${v.slice("#/$defs/".length)}`
    else if (k === "$defs" && typeof v === "object" && v !== null)
      out[k] = Object.fromEntries(
        Object.entries(v).map(([name, def]) => [name, renameRefs(def, prefix)])
      )
    else out[k] = renameRefs(v, prefix)
  }
  return out
}
