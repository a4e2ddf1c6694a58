/**
 * Which code runs a sink of the config file.
 *
 * - `type: console` is built in.
 * - `type: slack | eventbridge | audit-log | mirror` are the shipped sink packages, loaded by
 *   dynamic import so that a user installs only those they use.
 * - `module: ./my-sink.js` (a path relative to the config file) or
 *   `module: some-package` loads a custom sink: its `definition` export, or its
 *   default export, must be a `Sink.Definition` from `@workos-relay/core`.
 */
import { createRequire } from "node:module"
import * as Path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { type Sink, Text } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as ConsoleSink from "./ConsoleSink.ts"

/** Sink types that need no package. */
export const builtins: Readonly<Record<string, Sink.Definition>> = {
  console: ConsoleSink.definition
}

/** The shipped sink types and the package that holds each. */
export const packages: Readonly<Record<string, string>> = {
  slack: "@workos-relay/sink-slack",
  eventbridge: "@workos-relay/sink-eventbridge",
  "audit-log": "@workos-relay/sink-audit-log",
  mirror: "@workos-relay/sink-mirror"
}

export const knownTypes: ReadonlyArray<string> = [
  ...Object.keys(builtins),
  ...Object.keys(packages)
]

/** Where a sink's code comes from, as the config file says. */
export interface Reference {
  readonly type?: string | undefined
  readonly module?: string | undefined
}

const isDefinition = (value: unknown): value is Sink.Definition =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as any).type === "string" &&
  typeof (value as any).make === "function" &&
  (typeof (value as any).config === "object" || typeof (value as any).config === "function") &&
  (value as any).config !== null &&
  (value as any).config.ast !== undefined

/**
 * What an import could not find, from Node's error: the module or package named in
 * "Cannot find module '/a/b.mjs' imported from ..." or "Cannot find package 'x' ...".
 */
const missingImport = (
  error: unknown
): { readonly name: string; readonly from?: string } | undefined => {
  const code = (error as any)?.code
  if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") return undefined
  const match = /Cannot find (?:module|package) '([^']+)'(?: imported from (.+))?/.exec(
    String((error as any)?.message ?? "")
  )
  if (match === null) return undefined
  const name = match[1]!.startsWith("file:") ? fileURLToPath(match[1]!) : match[1]!
  return { name, ...(match[2] ? { from: match[2] } : {}) }
}

/** Node's errors for `import` or `export` statements in a file it loads as CommonJS. */
const esmLoadedAsCommonJs = (error: unknown): boolean =>
  error instanceof SyntaxError &&
  /Cannot use import statement outside a module|Unexpected token 'export'/.test(error.message)

/**
 * Imports a module. Fails with "not-found" when the module itself is absent; when it is
 * there but one of its own imports is not, says which (a custom sink in a folder
 * without effect installed, say), rather than that the module is missing.
 */
const importModule = (specifier: string, label: string) =>
  Effect.tryPromise({
    try: () => import(specifier) as Promise<Record<string, unknown>>,
    catch: (error) => {
      const missing = missingImport(error)
      const self = specifier.startsWith("file:") ? fileURLToPath(specifier) : specifier
      if (missing?.name === self) return "not-found"
      if (missing !== undefined) {
        const where = missing.from === undefined ? "" : ` (imported from ${missing.from})`
        return Path.isAbsolute(missing.name)
          ? `${label} imports ${missing.name}, which does not exist${where}`
          : `${label} imports "${missing.name}", which is not installed where it can be found${where}: install it next to the module (npm install ${missing.name})`
      }
      const message = (error as Error)?.message ?? String(error)
      if (esmLoadedAsCommonJs(error)) {
        return `could not load ${label}: ${message}: Node read it as CommonJS, as the nearest package.json says "type": "commonjs" (\`npm init -y\` writes that); set "type": "module" there, or name the file .mts (.mjs for JavaScript)`
      }
      if ((error as { code?: unknown })?.code === "ERR_UNSUPPORTED_DIR_IMPORT") {
        return `could not load ${label}: it is a folder; give the file in it (./folder/index.mjs, say)`
      }
      return `could not load ${label}: ${message}`
    }
  }).pipe(
    // A top-level await that never settles would leave nothing for Node to wait on:
    // the process would end with exit 0 and no word.
    Effect.timeoutOrElse({
      duration: loadTimeout(),
      orElse: () =>
        Effect.fail(
          `${label} did not finish loading within ${loadTimeout()} ms (a top-level await that never settles?); WORKOS_RELAY_MODULE_TIMEOUT sets the wait in ms`
        )
    })
  )

/** How long a sink module may take to load: 30 s, or WORKOS_RELAY_MODULE_TIMEOUT ms. */
const loadTimeout = (): number => {
  const fromEnv = Number(process.env.WORKOS_RELAY_MODULE_TIMEOUT)
  return Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : 30_000
}

const definitionOf = (mod: Record<string, unknown>, label: string) => {
  const candidate = mod.definition ?? mod.default
  return isDefinition(candidate)
    ? Effect.succeed(candidate)
    : Effect.fail(
        `${label} does not export a sink definition: export \`definition\` (or a default export) made with Sink.define from @workos-relay/core`
      )
}

/** Resolves a package name from the config file's folder, so a user's own packages are found. */
const resolvePackage = (name: string, configDir: string): string => {
  try {
    return pathToFileURL(createRequire(Path.join(configDir, "noop.js")).resolve(name)).href
  } catch {
    return name
  }
}

/** The definition of a sink entry, or why it cannot be had (one sentence, for the config error). */
export const resolve = (
  reference: Reference,
  configDir: string
): Effect.Effect<Sink.Definition, string> => {
  if (reference.module !== undefined) {
    const spec = reference.module
    const isPath = spec.startsWith(".") || Path.isAbsolute(spec)
    const target = isPath
      ? pathToFileURL(Path.resolve(configDir, spec)).href
      : resolvePackage(spec, configDir)
    const label = `module "${spec}"`
    return importModule(target, label).pipe(
      Effect.mapError((error) =>
        error === "not-found"
          ? isPath
            ? `module "${spec}" not found (looked for ${Path.resolve(configDir, spec)})`
            : `module "${spec}" not found: install it (npm install ${spec})`
          : error
      ),
      Effect.flatMap((mod) => definitionOf(mod, label)),
      Effect.flatMap((definition) =>
        reference.type !== undefined && reference.type !== definition.type
          ? Effect.fail(
              `module "${spec}" defines sink type "${definition.type}", not "${reference.type}"`
            )
          : Effect.succeed(definition)
      )
    )
  }
  const type = reference.type
  if (type === undefined)
    return Effect.fail(`a sink needs "type" (one of ${knownTypes.join(", ")}) or "module"`)
  const builtin = builtins[type]
  if (builtin !== undefined) return Effect.succeed(builtin)
  const pkg = packages[type]
  if (pkg === undefined) {
    const [hint] = Text.closest(type, knownTypes)
    return Effect.fail(
      `unknown sink type "${type}"${hint === undefined ? "" : `; did you mean "${hint}"?`} (known types: ${knownTypes.join(", ")}; a custom sink is loaded with "module:")`
    )
  }
  return importModule(pkg, `package ${pkg}`).pipe(
    Effect.mapError((error) =>
      error === "not-found"
        ? `sink type "${type}" needs the package ${pkg}: install it (npm install ${pkg})`
        : error
    ),
    Effect.flatMap((mod) => definitionOf(mod, `package ${pkg}`))
  )
}
