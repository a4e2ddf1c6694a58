/**
 * Detail-type templates: literal text with `{{event}}` standing for the event type,
 * as `workos.{{event}}`. Parsed once from the config, rendered per event.
 */

/** The placeholders a template may use. */
export const placeholders = ["event"] as const

export type Placeholder = (typeof placeholders)[number]

export type Part = { readonly text: string } | { readonly placeholder: Placeholder }

const isPlaceholder = (name: string): name is Placeholder =>
  (placeholders as ReadonlyArray<string>).includes(name)

/** The template's parts, or what is wrong with it. */
export const parse = (template: string): ReadonlyArray<Part> | string => {
  if (template === "") return "detailType must not be empty"
  const parts: Array<Part> = []
  const pattern = /\{\{\s*([^}]*?)\s*\}\}/g
  let last = 0
  for (const match of template.matchAll(pattern)) {
    const name = match[1] ?? ""
    if (!isPlaceholder(name)) {
      return `detailType uses an unknown placeholder {{${name}}}; known: ${placeholders.map((p) => `{{${p}}}`).join(", ")}`
    }
    if (match.index > last) parts.push({ text: template.slice(last, match.index) })
    parts.push({ placeholder: name })
    last = match.index + match[0].length
  }
  if (last < template.length) parts.push({ text: template.slice(last) })
  const rest = parts.map((part) => ("text" in part ? part.text : "")).join("")
  if (rest.includes("{{") || rest.includes("}}"))
    return `detailType has an unclosed placeholder: ${JSON.stringify(template)}`
  return parts
}

/** Renders a parsed template for one event type. */
export const render = (parts: ReadonlyArray<Part>, eventType: string): string => {
  let out = ""
  for (const part of parts) out += "text" in part ? part.text : eventType
  return out
}
