/**
 * Slack text that payload content cannot take over, cut to a length without
 * ever breaking markup.
 *
 * A text is a list of pieces: our own markup (`*Label*`, `<!here>`, a date
 * token), kept whole or dropped whole, and payload values, which are escaped
 * unit by unit so a cut can only fall between two escaped characters.
 */

/** A piece of mrkdwn: our markup (a string) or a payload value (escaped on output). */
export type Piece = string | Value

export interface Value {
  readonly value: string
  /** How the value is set: plain, in bold, or as inline code (ids, codes). */
  readonly style?: "bold" | "code" | "italic"
}

export const ELLIPSIS = "…"
const ZWSP = "\u200B"

export const value = (text: string, style?: Value["style"]): Value =>
  style === undefined ? { value: text } : { value: text, style }
export const bold = (text: string): Value => ({ value: text, style: "bold" })
export const code = (text: string): Value => ({ value: text, style: "code" })
export const italic = (text: string): Value => ({ value: text, style: "italic" })

/** Escapes the three characters Slack treats as markup: `&`, `<`, `>`. */
export const escapeText = (text: string): string =>
  text.replace(/[&<>]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&gt;"))

const isWordChar = (c: string | undefined): boolean => c !== undefined && /[\p{L}\p{N}]/u.test(c)

/**
 * The escaped form of each character of a payload value, one entry per code
 * point, so a cut between two entries never splits an entity or a surrogate pair.
 *
 * Slack has no escape for its formatting characters; a formatting character
 * that is not inside a word (where Slack ignores it anyway) gets zero-width
 * spaces around it, which keeps `*bold*` from formatting while looking the same.
 * Inside inline code nothing formats, but a backtick would end the code, so it
 * becomes a look-alike (U+02CB).
 */
const units = (text: string, style: Value["style"]): Array<string> => {
  const chars = Array.from(text)
  const out: Array<string> = new Array(chars.length)
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!
    if (c === "&") out[i] = "&amp;"
    else if (c === "<") out[i] = "&lt;"
    else if (c === ">") out[i] = "&gt;"
    else if (style === "code") out[i] = c === "`" ? "ˋ" : c === "\n" ? " " : c
    else if (
      (c === "*" || c === "_" || c === "~" || c === "`") &&
      !(isWordChar(chars[i - 1]) && isWordChar(chars[i + 1]))
    )
      out[i] = `${ZWSP}${c}${ZWSP}`
    else out[i] = c
  }
  return out
}

const wrap = (style: Value["style"]): readonly [string, string] =>
  style === "bold"
    ? ["*", "*"]
    : style === "code"
      ? ["`", "`"]
      : style === "italic"
        ? ["_", "_"]
        : ["", ""]

/** A payload value, escaped and neutralised, whole. */
export const renderValue = (v: Value): string => {
  if (v.value.length === 0) return ""
  const [open, close] = wrap(v.style)
  // Most values have nothing to escape.
  if (!SPECIAL.test(v.value)) return open + v.value + close
  return open + units(v.value, v.style).join("") + close
}

const SPECIAL = /[&<>*_~`\n]/

/**
 * A payload value cut to fit `budget` characters (with an ellipsis when cut),
 * or `undefined` when not even its first character fits.
 */
export const fitValue = (v: Value, budget: number): string | undefined => {
  const [open, close] = wrap(v.style)
  // Each character takes at least one unit of room: no need to look further than `budget`.
  const text = v.value.length > budget ? v.value.slice(0, budget + 1) : v.value
  const parts = units(text, v.style)
  const whole = parts.reduce((n, u) => n + u.length, 0)
  if (open.length + whole + close.length <= budget) return open + parts.join("") + close
  let room = budget - open.length - close.length - ELLIPSIS.length
  let out = ""
  for (const u of parts) {
    if (u.length > room) break
    out += u
    room -= u.length
  }
  // An empty `*…*` or a dangling zero-width space helps nobody.
  out = out.replace(/\u200B$/, "")
  if (out.trim().length === 0) return undefined
  return open + out + ELLIPSIS + close
}

/**
 * Renders pieces within `limit` characters: markup whole or not at all, payload
 * values cut at a character boundary. Whatever comes out is well-formed mrkdwn.
 */
export const render = (pieces: ReadonlyArray<Piece>, limit: number): string => {
  let out = ""
  for (const piece of pieces) {
    const room = limit - out.length
    if (typeof piece === "string") {
      if (piece.length > room) break
      out += piece
    } else {
      // A value longer than the room cannot fit whole: skip escaping all of it.
      const whole = piece.value.length <= room ? renderValue(piece) : undefined
      if (whole !== undefined && whole.length <= room) {
        out += whole
        continue
      }
      const cut = fitValue(piece, room)
      if (cut !== undefined) out += cut
      break
    }
  }
  return out
}

/** Plain text (a header, a button label) cut to `limit` characters at a code point boundary. */
export const plain = (text: string, limit: number): string => {
  // Slack rejects empty text objects.
  const clean = text.replace(/\s+/g, " ").trim() || "-"
  if (clean.length <= limit) return clean
  let out = ""
  for (const c of clean) {
    if (out.length + c.length > limit - ELLIPSIS.length) break
    out += c
  }
  return out + ELLIPSIS
}

/** Plain-text value cut to `max` code points, for pieces that must stay short. */
export const clip = (text: string, max: number): string => {
  if (text.length <= max) return text
  // Walk code points only as far as needed: values can be long.
  let count = 0
  let keep = 0
  for (const c of text) {
    count++
    if (count > max) return `${text.slice(0, keep)}${ELLIPSIS}`
    if (count < max) keep += c.length
  }
  return text
}
