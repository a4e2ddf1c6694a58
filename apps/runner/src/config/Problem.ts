/**
 * What is wrong with a config file: each problem with its path in the file, and the
 * error that lists them all.
 */
import * as Data from "effect/Data"

/** One thing wrong with the file, where. */
export interface Problem {
  readonly path: string
  readonly message: string
}

/** The config cannot be used; the message lists every problem. */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly file: string
  readonly problems: ReadonlyArray<Problem>
}> {
  override get message(): string {
    const n = this.problems.length
    const lines = this.problems.map((p) => `  - ${p.path === "" ? "" : `${p.path}: `}${p.message}`)
    return [`${this.file}: ${n} problem${n === 1 ? "" : "s"} in the config`, ...lines].join("\n")
  }
}

/** A key's path under `base`, as a problem shows it: `sinks.out`, `events[0]`, `sinks["a b"]`. */
export const joinPath = (base: string, key: PropertyKey): string =>
  typeof key === "number"
    ? `${base}[${key}]`
    : /^[A-Za-z_$][\w$-]*$/.test(String(key))
      ? base === ""
        ? String(key)
        : `${base}.${String(key)}`
      : `${base}[${JSON.stringify(String(key))}]`
