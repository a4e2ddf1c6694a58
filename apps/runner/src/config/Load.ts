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
    try: () => Yaml.parse(text, { prettyErrors: true, uniqueKeys: true }) as unknown,
    catch: (error) => {
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
  return Fs.readFileSync(file, "utf8")
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
    return yield* decode(document, {
      file,
      baseDir: Path.dirname(Path.resolve(file)),
      ...(env === undefined ? {} : { env })
    })
  })
