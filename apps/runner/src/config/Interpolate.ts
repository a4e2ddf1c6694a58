/**
 * `${VAR}` and `${VAR:-default}` in the file's strings, read from the environment.
 * A variable that is not set, or not well written, is a problem where it is.
 */
import { joinPath, type Problem } from "./Problem.ts"

// The last alternative is any other `${`, to the next `}` or the end: a mistake.
const interpolation = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?/g

/** Replaces `${VAR}` and `${VAR:-default}` in every string; `$${` is a literal `${`. */
export const interpolate = (
  value: unknown,
  env: Readonly<Record<string, string | undefined>>,
  path: string,
  problems: Array<Problem>
): unknown => {
  if (typeof value === "string") {
    return value.replace(
      interpolation,
      (match, name: string | undefined, fallback: string | undefined) => {
        if (match === "$${") return "${"
        if (name === undefined) {
          problems.push({
            path,
            message: match.endsWith("}")
              ? `bad variable "${match}": a name is letters, digits and _, not starting with a digit ($\${ is a literal \${)`
              : `no closing } in "${match}" (write \${NAME} or \${NAME:-default}; $\${ is a literal \${)`
          })
          return match
        }
        const found = env[name]
        if (found !== undefined && found !== "") return found
        if (fallback !== undefined) return fallback
        problems.push({
          path,
          message: `environment variable ${name} is not set (write \${${name}:-default} for a default)`
        })
        return ""
      }
    )
  }
  if (Array.isArray(value))
    return value.map((v, i) => interpolate(v, env, `${path}[${i}]`, problems))
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value))
      out[k] = interpolate(v, env, joinPath(path, k), problems)
    return out
  }
  return value
}
