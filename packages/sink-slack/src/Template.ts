/**
 * `{{path}}` templates for a message's header and text, written in a config file:
 * `"{{data.email}} failed to sign in ({{data.error.code}})"`.
 *
 * A path is a dotted path into the event (`data.emails.0.value`). The template's
 * own text is trusted mrkdwn from the config; the values it pulls from the event
 * are escaped, so an event can never mention, link or format.
 */
import * as Mrkdwn from "./internal/Mrkdwn.ts"

/** A compiled template: literal text and paths, in order. */
export interface Template {
  readonly source: string
  readonly parts: ReadonlyArray<Part>
}

export type Part = { readonly literal: string } | { readonly path: ReadonlyArray<string> }

const PATH = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/

/** Compiles a template, or says what is wrong with it. */
export const compile = (source: string): Template | { readonly error: string } => {
  const parts: Array<Part> = []
  let rest = source
  while (rest.length > 0) {
    const open = rest.indexOf("{{")
    const stray = rest.indexOf("}}")
    if (stray !== -1 && (open === -1 || stray < open)) {
      return {
        error: `"}}" without a "{{" at character ${source.length - rest.length + stray + 1}`
      }
    }
    if (open === -1) {
      parts.push({ literal: rest })
      break
    }
    if (open > 0) parts.push({ literal: rest.slice(0, open) })
    const close = rest.indexOf("}}", open + 2)
    if (close === -1) {
      return { error: `"{{" without a "}}" at character ${source.length - rest.length + open + 1}` }
    }
    const path = rest.slice(open + 2, close).trim()
    if (!PATH.test(path)) {
      return { error: `"{{${path}}}" is not a path like {{data.email}} or {{data.emails.0.value}}` }
    }
    parts.push({ path: path.split(".") })
    rest = rest.slice(close + 2)
  }
  return { source, parts }
}

/** The value at a path in the event, as text; empty when absent. */
export const lookup = (root: unknown, path: ReadonlyArray<string>): string => {
  let current: unknown = root
  for (const key of path) {
    if (current === null || typeof current !== "object") return ""
    current = (current as Record<string, unknown>)[key]
  }
  if (current === undefined || current === null) return ""
  return typeof current === "object" ? JSON.stringify(current) : String(current)
}

/** Longest value a template takes from the event, so literal text keeps its room. */
const MAX_VALUE = 500

/** The template as mrkdwn pieces: literal text as markup, event values as escaped values. */
export const pieces = (template: Template, event: unknown): ReadonlyArray<Mrkdwn.Piece> =>
  template.parts.map((part) =>
    "literal" in part
      ? part.literal
      : Mrkdwn.value(Mrkdwn.clip(lookup(event, part.path), MAX_VALUE))
  )

/** The template as plain text (for a header), values as they are. */
export const plainText = (template: Template, event: unknown): string =>
  template.parts
    .map((part) =>
      "literal" in part ? part.literal : Mrkdwn.clip(lookup(event, part.path), MAX_VALUE)
    )
    .join("")
