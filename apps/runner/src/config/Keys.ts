/**
 * What a Schema says of its keys, for the wording of problems: the keys it takes at
 * a path (for "did you mean"), and the members of a union told apart by a literal
 * key (audit-log's `store: jsonl`).
 */
import type * as Schema from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"
import { isRecord } from "./Guards.ts"

/** The keys a schema accepts at a path, for "did you mean" (through unions, suspends, encodings). */
export const keysAt = (ast: SchemaAST.AST, path: ReadonlyArray<PropertyKey>): Array<string> => {
  const node: any = ast
  if (node._tag === "Union") return node.types.flatMap((t: SchemaAST.AST) => keysAt(t, path))
  if (node._tag === "Suspend") return keysAt(node.thunk(), path)
  if (node._tag !== "Objects") return []
  if (path.length === 0) return node.propertySignatures.map((ps: any) => String(ps.name))
  const [head, ...rest] = path
  const next = node.propertySignatures.find((ps: any) => ps.name === head)
  return next === undefined ? [] : keysAt(next.type, rest)
}

/** The keys of each member of a union schema whose type is a literal (`store: "jsonl"`). */
export const literalKeys = (
  schema: Schema.Top
): Array<{ readonly member: Schema.Top; readonly key: string; readonly value: unknown }> => {
  const members: unknown = (schema as { members?: unknown }).members
  if (!Array.isArray(members)) return []
  return (members as Array<Schema.Top>).flatMap((member) => {
    const node: any = member.ast
    if (node._tag !== "Objects") return []
    return node.propertySignatures
      .filter((ps: any) => ps.type._tag === "Literal")
      .map((ps: any) => ({ member, key: String(ps.name), value: ps.type.literal }))
  })
}

/** The one member of a union schema that the input names by a literal key it sets (`store: jsonl`). */
export const namedMember = (schema: Schema.Top, input: unknown): Schema.Top | undefined => {
  if (!isRecord(input)) return undefined
  const named = new Set(
    literalKeys(schema)
      .filter(({ key, value }) => Object.hasOwn(input, key) && input[key] === value)
      .map(({ member }) => member)
  )
  return named.size === 1 ? [...named][0] : undefined
}

/** The key that takes `value` as its literal in some member of a union (`jsonl` -> `store`). */
export const literalKeyOf = (schema: Schema.Top, value: string): string | undefined =>
  literalKeys(schema).find((literal) => literal.value === value)?.key
