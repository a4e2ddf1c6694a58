/**
 * One sink entry of the file: the runner's keys, the sink's definition (loaded through
 * the Registry) and the sink's own options, which the definition's Schema decodes.
 */
import { type Sink, Text } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import type * as Schema from "effect/Schema"
import * as Registry from "../Registry.ts"
import { checkPatterns, checkRetryOrder, nothingPasses } from "./Checks.ts"
import { isString } from "./Guards.ts"
import { decodeAll } from "./Issues.ts"
import { keysAt, literalKeyOf, literalKeys, namedMember } from "./Keys.ts"
import { joinPath, type Problem } from "./Problem.ts"
import {
  defaults,
  type FileType,
  type RetrySettings,
  runnerSinkKeys,
  type SinkConfig,
  SinkKeys
} from "./Schema.ts"
import { ms, numberOf } from "./Values.ts"

/**
 * Decodes the entry of the sink `name`, each problem added to `problems`; the sink
 * only when it has none. `file` is the file's decoded keys (undefined when they did
 * not decode); a relative `module` resolves from `baseDir`.
 */
export const decodeSink = (
  name: string,
  entry: unknown,
  context: { readonly file: FileType | undefined; readonly baseDir: string },
  problems: Array<Problem>
): Effect.Effect<SinkConfig | undefined> =>
  Effect.gen(function* () {
    const base = joinPath("sinks", name)
    // `--sink a,b` must be able to name every sink.
    if (name.trim() === "" || name.includes(","))
      problems.push({
        path: base,
        message: `a sink name must not be empty or hold a comma (--sink takes comma-separated names), got ${JSON.stringify(name)}`
      })
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      problems.push({ path: base, message: "expected a mapping with at least `type`" })
      return undefined
    }
    const own: Record<string, unknown> = {}
    const runner: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(entry)) (runnerSinkKeys.includes(k) ? runner : own)[k] = v
    const keys = decodeAll(SinkKeys, SinkKeys.ast, runner, base, problems)
    // The patterns, the retry delays' order and the sink's own options are checked even
    // when another of the runner's keys (batch, retry) is wrong, so that one error lists
    // every problem.
    checkPatterns(runner.events, `${base}.events`, problems)
    checkRetryOrder(runner.retry, `${base}.retry`, problems)
    const reference = {
      type: isString(runner.type) ? runner.type : undefined,
      module: isString(runner.module) ? runner.module : undefined
    }
    // A type or module that is not a string: the Schema said so already.
    if (runner.type !== reference.type || runner.module !== reference.module) return undefined
    const resolved = yield* Effect.result(Registry.resolve(reference, context.baseDir))
    if (Result.isFailure(resolved)) {
      problems.push({
        path: reference.module !== undefined ? `${base}.module` : `${base}.type`,
        message: resolved.failure
      })
      return undefined
    }
    const definition = resolved.success
    const before = problems.length
    const { decoded, shape } = decodeOptions(definition, own, base, problems)
    explainSelectors(definition, own, base, problems, before)
    explainUnknownKeys(definition, shape, base, problems, before)
    if (keys === undefined || problems.length > before) return undefined
    const patterns = [definition.events, context.file?.events, keys.events].filter(
      (p): p is ReadonlyArray<string> => p !== undefined
    )
    if (nothingPasses(patterns)) {
      problems.push(noEventProblem(definition, context.file?.events, keys.events, base))
      return undefined
    }
    const batch = keys.batch ?? {}
    return {
      name,
      type: definition.type,
      definition,
      options: decoded,
      patterns,
      organizations: keys.organizations ?? context.file?.organizations,
      batch: {
        ...(batch.maxEvents === undefined ? {} : { maxEvents: numberOf(batch.maxEvents)! }),
        ...(batch.maxBytes === undefined ? {} : { maxBytes: numberOf(batch.maxBytes)! }),
        ...(batch.maxWait === undefined ? {} : { maxWait: Text.parseDuration(batch.maxWait)! })
      },
      retry: retrySettings(keys.retry),
      directory: context.baseDir,
      ...(keys.sources === undefined ? {} : { sources: keys.sources })
    } satisfies SinkConfig
  })

/** The sink's own options, decoded by its definition's Schema. */
const decodeOptions = (
  definition: Sink.Definition,
  own: Record<string, unknown>,
  base: string,
  problems: Array<Problem>
) => {
  const before = problems.length
  const decoded = decodeAll(definition.config, definition.config.ast, own, base, problems)
  // Options of several shapes told apart by a key (audit-log's `store: jsonl`): the
  // problems of the shape the entry names, not of every shape.
  const shape = decoded === undefined ? namedMember(definition.config, own) : undefined
  if (shape !== undefined) {
    problems.length = before
    decodeAll(shape as Schema.Codec<unknown, unknown>, shape.ast, own, base, problems)
  }
  return { decoded, shape }
}

/**
 * A selector (`store`) with a value no shape takes: say which it takes, in place
 * of each shape's own "Expected ..." for it.
 */
const explainSelectors = (
  definition: Sink.Definition,
  own: Record<string, unknown>,
  base: string,
  problems: Array<Problem>,
  before: number
) => {
  const literals = literalKeys(definition.config)
  for (const key of new Set(literals.map((l) => l.key))) {
    const allowed = literals.filter((l) => l.key === key).map((l) => JSON.stringify(l.value))
    const value = own[key]
    if (value === undefined || allowed.includes(JSON.stringify(value))) continue
    const at = joinPath(base, key)
    for (let i = problems.length - 1; i >= before; i--)
      if (problems[i]!.path === at) problems.splice(i, 1)
    problems.push({
      path: at,
      message: `expected ${allowed.slice(0, -1).join(", ")} or ${allowed.at(-1)}, got ${JSON.stringify(value)}`
    })
  }
}

/** An unknown key of a sink is reported against the sink's keys and the runner's. */
const explainUnknownKeys = (
  definition: Sink.Definition,
  shape: Schema.Top | undefined,
  base: string,
  problems: Array<Problem>,
  before: number
) => {
  const ownKeys = keysAt((shape ?? definition.config).ast, [])
  for (let i = before; i < problems.length; i++) {
    const p = problems[i]!
    if (p.message === "unknown key") {
      const key = p.path.slice(base.length + 1)
      problems[i] = { path: p.path, message: unknownKeyMessage(definition, shape, ownKeys, key) }
    }
  }
}

const unknownKeyMessage = (
  definition: Sink.Definition,
  shape: Schema.Top | undefined,
  ownKeys: ReadonlyArray<string>,
  key: string
): string => {
  const [hint] = Text.closest(
    key,
    [...runnerSinkKeys, ...ownKeys].filter((known) => known !== key)
  )
  const selector = literalKeyOf(definition.config, key)
  // A key of another shape than the one the entry names (`path` with `store: jsonl`).
  const owner =
    shape === undefined
      ? undefined
      : literalKeys(definition.config).find(
          (l) => l.member !== shape && keysAt(l.member.ast, []).includes(key)
        )
  return selector !== undefined
    ? `unknown key; did you mean "${selector}: ${key}"?`
    : owner !== undefined
      ? `only with ${owner.key}: ${String(owner.value)}`
      : hint !== undefined
        ? `unknown key; did you mean "${hint}"?`
        : `unknown key; the ${definition.type} sink takes ${[...new Set(ownKeys)].join(", ") || "no options of its own"} (and the runner's ${runnerSinkKeys.join(", ")})`
}

/** Why a sink whose event lists (its type's, the file's, its own) share no type gets nothing. */
const noEventProblem = (
  definition: Sink.Definition,
  fileEvents: ReadonlyArray<string> | undefined,
  sinkEvents: ReadonlyArray<string> | undefined,
  base: string
): Problem => {
  const lists = [
    definition.events && `the ${definition.type} sink takes ${definition.events.join(", ")}`,
    fileEvents && `events: ${fileEvents.join(", ")}`,
    sinkEvents && `${base}.events: ${sinkEvents.join(", ")}`
  ].filter(Boolean)
  return {
    path: sinkEvents === undefined ? base : `${base}.events`,
    message: `no event type is in all of its lists (${lists.join("; ")}): the sink would get nothing`
  }
}

const retrySettings = (
  retry: { readonly [K in keyof RetrySettings]?: string | number } | undefined
): RetrySettings => ({
  initialDelay: ms(retry?.initialDelay, defaults.retry.initialDelay),
  maxDelay: ms(retry?.maxDelay, defaults.retry.maxDelay),
  maxDuration: ms(retry?.maxDuration, defaults.retry.maxDuration)
})
