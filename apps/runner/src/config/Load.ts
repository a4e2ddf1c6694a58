/**
 * Reading a config file: a regular file of at most `maxBytes` (so `-c /dev/zero` or a
 * FIFO is refused, not read for ever), YAML (JSON is YAML too), a syntax error with
 * its line and column, then decoded.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Effect from "effect/Effect"
import type * as YamlModule from "yaml"
import { decode } from "./Decode.ts"
import { ConfigError } from "./Problem.ts"
import type { RelayConfig } from "./Schema.ts"

/** Parses YAML or JSON text; a syntax error names the line and column. */
export const parse = (text: string, file: string): Effect.Effect<unknown, ConfigError> =>
  // Loaded on use: the YAML parser is 72 modules that `--help` does not need.
  Effect.promise(() => import("yaml")).pipe(Effect.flatMap((Yaml) => parseWith(Yaml, text, file)))

const parseWith = (
  Yaml: typeof YamlModule,
  text: string,
  file: string
): Effect.Effect<unknown, ConfigError> =>
  Effect.try({
    try: () => {
      const document = Yaml.parse(text, { prettyErrors: true, uniqueKeys: true }) as unknown
      if (isCyclic(document)) throw new NotAFile("a YAML alias that contains itself")
      return document
    },
    catch: (error) => {
      if (error instanceof NotAFile)
        return new ConfigError({
          file,
          problems: [
            { path: "", message: `not valid config: ${error.message} (such as a: &a [*a])` }
          ]
        })
      const e = error as YamlModule.YAMLError
      const where =
        e.linePos?.[0] === undefined ? "" : `line ${e.linePos[0].line}, column ${e.linePos[0].col}`
      const first = String(e.message ?? error)
        .split("\n")[0]!
        .replace(/ at line \d+, column \d+:?$/, "")
      const line =
        e.linePos?.[0] === undefined ? "" : (text.split("\n")[e.linePos[0].line - 1] ?? "")
      return new ConfigError({
        file,
        problems: [{ path: where, message: `not valid YAML: ${first}${variableHint(line)}` }]
      })
    }
  })

/**
 * In `{ apiKey: ${KEY} }` YAML reads the variable's brace as the start of a map and
 * reports only that: say what to write instead.
 */
const variableHint = (line: string): string => {
  const variable = /(?:^|[^"'])(\$\{[^}]*\})/.exec(line)?.[1]
  return variable !== undefined && /[{[]/.test(line.replaceAll(variable, ""))
    ? ` (inside { } or [ ], put a variable in quotes: "${variable}")`
    : ""
}

/** A config file is a few kilobytes; anything past this is not one. */
export const maxBytes = 1024 * 1024

/** The file's text, if it is a regular file no larger than `maxBytes`. */
const readText = (file: string): string => {
  const stat = Fs.statSync(file)
  if (!stat.isFile()) throw new NotAFile("not a regular file (a folder, a device or a pipe)")
  if (stat.size > maxBytes)
    throw new NotAFile(`${stat.size} bytes, more than a config file's ${maxBytes} at most`)
  const bytes = Fs.readFileSync(file)
  if (isUtf16(bytes)) throw new NotAFile("the file is UTF-16 text; save it as UTF-8")
  return bytes.toString("utf8")
}

/** A UTF-16 byte order mark, or a zero byte in every other place of the first bytes. */
const isUtf16 = (bytes: Uint8Array): boolean => {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))
    return true
  const head = bytes.subarray(0, Math.min(bytes.length, 64) & ~1)
  if (head.length < 2) return false
  const evenZeros = head.every((b, i) => i % 2 === 1 || b === 0)
  const oddZeros = head.every((b, i) => i % 2 === 0 || b === 0)
  return evenZeros || oddZeros
}

/** Whether `value` contains itself, as a recursive YAML alias (`a: &a [*a]`) makes it. */
const isCyclic = (value: unknown, ancestors: Set<unknown> = new Set()): boolean => {
  if (typeof value !== "object" || value === null) return false
  if (ancestors.has(value)) return true
  ancestors.add(value)
  const cyclic = Object.values(value).some((child) => isCyclic(child, ancestors))
  ancestors.delete(value)
  return cyclic
}

class NotAFile extends Error {}

/** Reads, parses and decodes a config file. */
export const load = (
  file: string,
  env?: Readonly<Record<string, string | undefined>>
): Effect.Effect<RelayConfig, ConfigError> =>
  Effect.gen(function* () {
    const text = yield* Effect.try({
      try: () => readText(file),
      catch: (error) =>
        new ConfigError({
          file,
          problems: [
            {
              path: "",
              message:
                (error as any)?.code === "ENOENT"
                  ? "file not found (pass --config <file>; `workos-relay config schema` prints the format)"
                  : error instanceof NotAFile
                    ? `cannot be a config file: ${error.message}`
                    : `cannot read the file: ${(error as Error).message}`
            }
          ]
        })
    })
    const document = yield* parse(text, file)
    const config = yield* decode(document, {
      file,
      baseDir: Path.dirname(Path.resolve(file)),
      ...(env === undefined ? {} : { env })
    })
    // Found now rather than when `run` opens the store.
    if (config.state.type === "sqlite" && isFolder(config.state.path))
      return yield* new ConfigError({
        file,
        problems: [
          {
            path: "state.sqlite",
            message: `${config.state.path} is a folder; name a file in it, such as state.db`
          }
        ]
      })
    return config
  })

const isFolder = (path: string): boolean => {
  try {
    return Fs.statSync(path).isDirectory()
  } catch {
    return false
  }
}
