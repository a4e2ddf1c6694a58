import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Config from "../src/Config.ts"

// As the runner decodes a sink's options: JSON codec, every error, unknown keys refused.
const decode = (input: unknown) =>
  Schema.decodeUnknownResult(Schema.toCodecJson(Config.Config))(input, {
    errors: "all",
    onExcessProperty: "error"
  })

const problems = (input: unknown): string => {
  const result = decode(input)
  if (Result.isSuccess(result)) throw new Error(`expected ${JSON.stringify(input)} to be refused`)
  return SchemaIssue.makeFormatterDefault()(result.failure.issue)
}

describe("Config", () => {
  it("defaults to SQLite at ./.workos-relay/audit.db", () => {
    expect(Result.getOrThrow(decode({}))).toEqual({ path: "./.workos-relay/audit.db" })
    expect(
      Result.getOrThrow(decode({ store: "sqlite", path: "/var/audit.db", retention: "400 days" }))
    ).toEqual({
      store: "sqlite",
      path: "/var/audit.db",
      retention: "400 days"
    })
  })

  it("reads a Postgres URL as a secret", () => {
    const config = Result.getOrThrow(
      decode({ store: "postgres", url: "postgres://u:pw@db:5432/audit" })
    )
    expect(config.store).toBe("postgres")
    if (config.store !== "postgres") return
    expect(Redacted.isRedacted(config.url)).toBe(true)
    expect(String(config.url)).not.toContain("pw")
    expect(Redacted.value(config.url)).toBe("postgres://u:pw@db:5432/audit")
  })

  it("reads a JSONL folder with gzip off by default", () => {
    expect(Result.getOrThrow(decode({ store: "jsonl", directory: "./audit" }))).toEqual({
      store: "jsonl",
      directory: "./audit",
      gzip: false
    })
  })

  it("parses retention as days, hours or weeks", () => {
    expect(Duration.toMillis(Config.parseRetention("400 days")!)).toBe(400 * 86_400_000)
    expect(Duration.toMillis(Config.parseRetention("400d")!)).toBe(400 * 86_400_000)
    expect(Duration.toMillis(Config.parseRetention("12h")!)).toBe(12 * 3_600_000)
    expect(Duration.toMillis(Config.parseRetention("2 weeks")!)).toBe(14 * 86_400_000)
    expect(Config.parseRetention("0d")).toBeUndefined()
    expect(Config.parseRetention("soon")).toBeUndefined()
  })

  it("refuses bad input, saying what and where", () => {
    expect(problems({ retention: "forever" })).toContain(
      'retention must be a positive duration such as "400 days" or "400d", got "forever"'
    )
    expect(problems({ retention: "forever" })).toContain('["retention"]')
    const pg = problems({ store: "postgres", url: "mysql://x" })
    expect(pg).toContain("url must be a postgres:// or postgresql:// URL")
    expect(pg).toContain('["url"]')
    expect(problems({ store: "postgres" })).toContain('["url"]')
    expect(problems({ store: "jsonl" })).toContain('["directory"]')
    expect(problems({ store: "jsonl", directory: "d", gzip: "yes" })).toContain('["gzip"]')
    expect(problems({ store: "mongodb" })).toContain('["store"]')
    expect(problems({ store: "sqlite", pth: "x" })).toContain('["pth"]')
  })
})
