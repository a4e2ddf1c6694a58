import { describe, expect, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { Config } from "../src/index.ts"

const decode = Schema.decodeUnknownSync(Config.Config)
const errorOf = (input: unknown): string => {
  try {
    decode(input)
  } catch (error) {
    return String(error)
  }
  throw new Error("decoded, but should not have")
}

describe("Config", () => {
  it("decodes as the runner does (JSON codec): durations, defaults, secrets from plain strings", () => {
    const config = Schema.decodeUnknownSync(Schema.toCodecJson(Config.Config))({
      eventBus: "default",
      requestTimeout: 500,
      credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" }
    })
    expect(config.requestTimeout).toBe(500)
    expect(config.source).toBe("workos")
    expect(config.credentials && Redacted.value(config.credentials.accessKeyId)).toBe("AKIDEXAMPLE")
  })

  it("fills in defaults", () => {
    expect(decode({ eventBus: "default" })).toEqual({
      eventBus: "default",
      source: "workos",
      detailType: "{{event}}",
      detail: "event",
      resources: [],
      requestTimeout: 10_000
    })
  })

  it("takes every option, credentials as Redacted", () => {
    const config = decode({
      region: "eu-west-1",
      eventBus: "arn:aws:events:eu-west-1:123456789012:event-bus/workos",
      source: "com.example.workos",
      detailType: "WorkOS {{event}}",
      detail: "data",
      resources: ["arn:aws:iam::123456789012:role/x"],
      endpoint: "https://vpce-123.events.eu-west-1.vpce.amazonaws.com",
      credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: "token" },
      requestTimeout: "2s"
    })
    expect(config.requestTimeout).toBe(2_000)
    expect(config.credentials && Redacted.value(config.credentials.secretAccessKey)).toBe("secret")
    expect(String(config.credentials?.secretAccessKey)).not.toContain("secret")
    expect(config.detail).toBe("data")
  })

  it("refuses a source under the reserved aws. prefix, saying where", () => {
    const error = errorOf({ eventBus: "default", source: "aws.foo" })
    expect(error).toContain(
      'source must not start with "aws." (reserved for AWS services), got "aws.foo"'
    )
    expect(error).toContain('at ["source"]')
  })

  it("refuses an empty or malformed event bus, saying where", () => {
    expect(errorOf({ eventBus: "" })).toMatch(/eventBus must not be empty[\s\S]*at \["eventBus"\]/)
    expect(errorOf({ eventBus: "my bus" })).toMatch(
      /eventBus must be a bus name[\s\S]*at \["eventBus"\]/
    )
    expect(errorOf({})).toMatch(/Missing key[\s\S]*at \["eventBus"\]/)
  })

  it("refuses bad regions, templates, detail modes, endpoints and credentials, saying where", () => {
    expect(errorOf({ eventBus: "b", region: "mars" })).toMatch(
      /region must look like us-east-1[\s\S]*at \["region"\]/
    )
    expect(errorOf({ eventBus: "b", detailType: "{{type}}" })).toMatch(
      /unknown placeholder \{\{type\}\}[\s\S]*at \["detailType"\]/
    )
    expect(errorOf({ eventBus: "b", detailType: "{{event" })).toMatch(
      /unclosed placeholder[\s\S]*at \["detailType"\]/
    )
    expect(errorOf({ eventBus: "b", detail: "all" })).toMatch(/at \["detail"\]/)
    expect(errorOf({ eventBus: "b", endpoint: "localhost:4566" })).toMatch(
      /http\(s\) URL[\s\S]*at \["endpoint"\]/
    )
    expect(errorOf({ eventBus: "b", requestTimeout: "soon" })).toMatch(
      /between 100ms and 5m[\s\S]*at \["requestTimeout"\]/
    )
    expect(errorOf({ eventBus: "b", requestTimeout: 10 })).toMatch(/at \["requestTimeout"\]/)
    expect(errorOf({ eventBus: "b", credentials: { accessKeyId: "AKID" } })).toMatch(
      /at \["credentials"\]\["secretAccessKey"\]/
    )
  })
})
