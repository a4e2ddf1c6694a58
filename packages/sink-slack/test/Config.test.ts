import { describe, expect, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { Config } from "../src/Config.ts"
import { definition } from "../src/index.ts"

const decode = (input: unknown) =>
  Schema.decodeUnknownResult(Config)(input, { errors: "all", onExcessProperty: "error" })

const errorOf = (input: unknown): string => {
  const result = decode(input)
  if (Result.isSuccess(result)) throw new Error("expected the config to be refused")
  return result.failure.message
}

const full = {
  token: "xoxb-1",
  channel: "#workos",
  routes: [
    { events: ["authentication.*_failed"], channel: "#security" },
    { organizations: ["org_01EHWNCE74X7JSDV0X3SZ3KJNY"], events: ["dsync.*"], channel: "C0123ABCD" }
  ],
  mentions: [{ events: ["authentication.*_failed"], mention: ["here", "U024BE7LH", "S0614TZR7"] }],
  templates: [{ events: ["dsync.user.*"], header: "{{data.email}}", text: "*{{data.state}}*" }],
  dashboardUrl: "https://dashboard.workos.com",
  slackApiUrl: "http://127.0.0.1:1234/api/",
  timeoutSeconds: 5,
  pacing: { perSecond: 1, burst: 3 },
  digest: { threshold: 10 }
}

describe("Config", () => {
  it("decodes a complete config, the token redacted", () => {
    const result = decode(full)
    expect(Result.isSuccess(result)).toBe(true)
    const config = Result.getOrThrow(result)
    expect(Redacted.isRedacted(config.token)).toBe(true)
    expect(Redacted.value(config.token!)).toBe("xoxb-1")
    expect(String(config.token)).not.toContain("xoxb")
    expect(Result.isSuccess(decode({ channel: "general", pacing: "off" }))).toBe(true)
    expect(definition.type).toBe("slack")
  })

  it("refuses a pattern that matches no event type, with where and a suggestion", () => {
    const message = errorOf({
      ...full,
      routes: [full.routes[0], { events: ["dsync.usr.created"], channel: "#x" }]
    })
    expect(message).toContain(
      'event pattern "dsync.usr.created" matches no WorkOS event type; did you mean "dsync.user.created"?'
    )
    expect(message).toContain('at ["routes"][1]["events"][0]')
  })

  it("refuses bad mentions, channels, templates and numbers, saying where", () => {
    expect(errorOf({ ...full, mentions: [{ events: ["*"], mention: ["@jane"] }] })).toContain(
      'at ["mentions"][0]["mention"][0]'
    )
    expect(errorOf({ ...full, channel: "Security Alerts" })).toContain(
      "a channel is an ID like C0123ABCD"
    )
    expect(errorOf({ ...full, templates: [{ events: ["*"], text: "{{data.email" }] })).toContain(
      'bad template: "{{" without a "}}" at character 1\n  at ["templates"][0]["text"]'
    )
    expect(errorOf({ ...full, templates: [{ events: ["*"] }] })).toContain(
      "a template needs `header`, `text` or both"
    )
    expect(errorOf({ ...full, routes: [{ organizations: ["acme"], channel: "#x" }] })).toContain(
      'expected a WorkOS organization id such as org_01EHWNCE74X7JSDV0X3SZ3KJNY\n  at ["routes"][0]["organizations"][0]'
    )
    expect(errorOf({ ...full, routes: [{ channel: "#x" }] })).toContain(
      "a route needs `events`, `organizations` or both"
    )
    expect(errorOf({ ...full, pacing: { perSecond: 0 } })).toContain('at ["pacing"]')
    expect(errorOf({ ...full, digest: { threshold: 1 } })).toContain('at ["digest"]["threshold"]')
    expect(errorOf({ ...full, dashboardUrl: "dashboard" })).toContain(
      "dashboardUrl is an http(s) URL"
    )
  })

  it("refuses a template path that names no field of the template's event types", () => {
    expect(
      errorOf({
        ...full,
        templates: [{ events: ["dsync.user.created"], header: "{{data.first_nam}}" }]
      })
    ).toContain(
      'header: {{data.first_nam}}: data.first_nam is not a field of events of type dsync.user.created; did you mean data.first_name?\n  at ["templates"][0]'
    )
    expect(
      errorOf({ ...full, dashboardUrl: "https://dashboard.workos.com/u/{{data.idd}}" })
    ).toContain(
      '{{data.idd}}: data.idd is not a field of any event; did you mean data.id?\n  at ["dashboardUrl"]'
    )
    // A field of one of the types is enough: other events show it empty.
    const either = { events: ["user.created", "dsync.group.created"], text: "{{data.email}}" }
    expect(Result.isSuccess(decode({ ...full, templates: [either] }))).toBe(true)
    expect(
      Result.isSuccess(
        decode({
          ...full,
          templates: [
            { events: ["dsync.user.*"], text: "{{data.emails.0.value}} {{context.actor.name}}" }
          ]
        })
      )
    ).toBe(true)
  })

  it("refuses unknown keys and a missing channel", () => {
    expect(errorOf({ ...full, chanel: "#x" })).toContain('at ["chanel"]')
    expect(errorOf({ token: "xoxb-1" })).toContain('at ["channel"]')
  })

  it("reports every problem at once", () => {
    const message = errorOf({
      channel: "#ok",
      routes: [{ events: ["nope.*"], channel: "#x" }],
      digest: { threshold: 0 }
    })
    expect(message).toContain('["routes"][0]["events"][0]')
    expect(message).toContain('["digest"]["threshold"]')
  })
})
