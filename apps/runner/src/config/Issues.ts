/**
 * Decoding with a Schema, each issue turned into a problem of the file: with its
 * path, in the file's words (an unknown key with the closest known one).
 */
import { Text } from "@workos-relay/core"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"
import * as SchemaIssue from "effect/SchemaIssue"
import { keysAt } from "./Keys.ts"
import { joinPath, type Problem } from "./Problem.ts"

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const valueAt = (input: unknown, keys: ReadonlyArray<PropertyKey>): unknown =>
  keys.reduce<unknown>(
    (v, k) => (typeof v === "object" && v !== null ? (v as any)[k] : undefined),
    input
  )

/** What the JSON codec of `Schema.Number` says of any other string. */
const nonFiniteStrings = 'Expected "Infinity" | "-Infinity" | "NaN"'

/** Decodes with every problem collected, each with its path under `base`. */
export const decodeAll = <A>(
  schema: Schema.Codec<A, unknown>,
  ast: SchemaAST.AST,
  input: unknown,
  base: string,
  problems: Array<Problem>
): A | undefined => {
  const result = Schema.decodeUnknownResult(Schema.toCodecJson(schema) as Schema.Codec<A, unknown>)(
    input,
    { errors: "all", onExcessProperty: "error" }
  )
  if (Result.isSuccess(result)) return result.success
  const push = (problem: Problem) => {
    // A union reports a problem once per member that has it.
    if (!problems.some((p) => p.path === problem.path && p.message === problem.message))
      problems.push(problem)
  }
  for (const issue of formatIssues(result.failure.issue).issues) {
    const keys = (issue.path ?? []).map((k: any) =>
      typeof k === "object" ? k.key : k
    ) as Array<PropertyKey>
    // The JSON codec's word for a value such as .inf somewhere inside a mapping or list
    // (`sinks.out`, whose keys are decoded later): the check of that value says more.
    if (issue.message === "Expected JSON value" && typeof valueAt(input, keys) === "object")
      continue
    const path = keys.reduce<string>((acc, k) => joinPath(acc, k), base)
    if (issue.message === "Expected no excess property") {
      const key = String(keys[keys.length - 1])
      // A key of another member of a union is known, but not here: no self-suggestion.
      const [hint] = Text.closest(
        key,
        keysAt(ast, keys.slice(0, -1)).filter((known) => known !== key)
      )
      push({
        path,
        message: `unknown key${hint === undefined ? "" : `; did you mean "${hint}"?`}`
      })
    } else if (issue.message === "Missing key") {
      push({ path, message: "required key is missing" })
    } else if (issue.message === nonFiniteStrings) {
      // A string where a number goes: the JSON codec would take only these three.
      push({ path, message: `expected a number, got ${JSON.stringify(valueAt(input, keys))}` })
    } else {
      push({ path, message: issue.message })
    }
  }
  return undefined
}
