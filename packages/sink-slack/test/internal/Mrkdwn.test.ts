import { describe, expect, it } from "@effect/vitest"
import { SlackStandIn } from "@workos-relay/testing"
import * as Mrkdwn from "../../src/internal/Mrkdwn.ts"

/** A small seeded PRNG, so a failure can be replayed. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const ALPHABET = [
  "a",
  "b",
  " ",
  "&",
  "<",
  ">",
  "*",
  "_",
  "~",
  "`",
  "é",
  "😀",
  "中",
  "\n",
  "|",
  "!",
  "@"
]

describe("Mrkdwn", () => {
  it("escapes &, < and > so payload text cannot mention or link", () => {
    const text = Mrkdwn.renderValue(
      Mrkdwn.value("<!channel> <@U123> <https://evil.test|click> & co")
    )
    expect(text).toBe("&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil.test|click&gt; &amp; co")
    expect(SlackStandIn.readMarkup(text, undefined)).toEqual({
      mentions: [],
      links: [],
      problems: []
    })
  })

  it("keeps formatting characters from formatting, but leaves them inside words alone", () => {
    const text = Mrkdwn.renderValue(Mrkdwn.value("*bold* _it_ ~gone~ `code` user_01ABC a*b"))
    expect(text).not.toMatch(/(^|\s)\*bold\*/)
    expect(text).not.toContain(" _it_")
    expect(text).toContain("user_01ABC")
    expect(text).toContain("a*b")
    // It still reads the same: only zero-width spaces were added.
    expect(text.replaceAll("\u200B", "")).toBe("*bold* _it_ ~gone~ `code` user_01ABC a*b")
    expect(Mrkdwn.renderValue(Mrkdwn.code("a`b"))).toBe("`aˋb`")
  })

  it("cuts to any limit without breaking an entity, a surrogate pair or a style", () => {
    const next = random(42)
    for (let run = 0; run < 2000; run++) {
      const length = Math.floor(next() * 60)
      const raw = Array.from({ length }, () => ALPHABET[Math.floor(next() * ALPHABET.length)]).join(
        ""
      )
      const style = (["bold", "code", "italic", undefined] as const)[Math.floor(next() * 4)]
      const limit = Math.floor(next() * 80)
      const pieces = ["*Label*\n", Mrkdwn.value(raw, style), " · ", Mrkdwn.code("evt_01")]
      const out = Mrkdwn.render(pieces, limit)
      expect(out.length).toBeLessThanOrEqual(limit)
      expect(SlackStandIn.readMarkup(out, undefined).problems).toEqual([])
      expect(out).not.toMatch(/&(?!amp;|lt;|gt;)/)
      // No lone surrogate halves.
      expect(out).not.toMatch(
        /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
      )
      // Our own markup is whole or absent.
      if (out.length > 0 && !out.startsWith("*Label*\n"))
        expect("*Label*\n".startsWith(out)).toBe(false)
      // A styled value keeps its closing mark.
      const body = out.slice("*Label*\n".length)
      if (raw.length > 0 && body.length > 0 && style !== undefined) {
        const mark = style === "bold" ? "*" : style === "code" ? "`" : "_"
        expect(body.startsWith(mark)).toBe(true)
        const end = body.indexOf(" · ")
        const valuePart = end === -1 ? body : body.slice(0, end)
        expect(valuePart.endsWith(mark)).toBe(true)
      }
    }
  })

  it("cuts plain text at a code point, with an ellipsis, and never leaves it empty", () => {
    expect(Mrkdwn.plain("😀".repeat(100), 11)).toBe(`${"😀".repeat(5)}…`)
    expect(Mrkdwn.plain("  ", 10)).toBe("-")
    expect(Mrkdwn.clip("abcdef", 4)).toBe("abc…")
  })
})
