import { describe, expect, it } from "@effect/vitest"
import { Event } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import { SlackStandIn, WorkOSStandIn } from "@workos-relay/testing"
import * as Blocks from "../src/Blocks.ts"
import * as Template from "../src/Template.ts"

const all = Object.values(examples) as ReadonlyArray<Event.Any>

const unknownEvent: Event.Any = {
  object: "event",
  id: "event_01UNKNOWN0000000000000000",
  event: "widget.assembled",
  data: {
    widget_id: "widget_01ABCDEFGHIJKLMNOP",
    name: "Sprocket",
    organization_id: "org_01XYZ0000000000000000000"
  },
  created_at: "2026-01-15T12:00:00.000Z"
}

const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const NASTY = [
  "<!channel>",
  "<!here|here>",
  "<@U024BE7LH>",
  "<!subteam^S0614TZR7>",
  "<https://evil.test|click me>",
  "*bold*",
  "_italic_",
  "~strike~",
  "`code`",
  "```block```",
  "&amp;",
  "&",
  "<",
  ">",
  "> quote",
  "😀",
  "中文字",
  "\n",
  "@channel",
  "#general",
  "x"
]

/** Every string in the value replaced by a long, markup-laden one. */
const fuzz = (value: unknown, next: () => number, length: number): unknown => {
  if (typeof value === "string") {
    let out = ""
    while (out.length < length) out += NASTY[Math.floor(next() * NASTY.length)]
    return out
  }
  if (Array.isArray(value)) return value.map((v) => fuzz(v, next, length))
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fuzz(v, next, length)]))
  }
  return value
}

const fuzzed = (event: Event.Any, seed: number, length: number): Event.Any => {
  const next = random(seed)
  return {
    ...event,
    data: fuzz(event.data, next, length) as any,
    ...(event.context !== undefined ? { context: fuzz(event.context, next, length) as any } : {})
  } as Event.Any
}

/** Everything a message must satisfy, whatever the event. */
const expectWithinLimits = (message: Blocks.Message) => {
  expect(SlackStandIn.checkBlocks(message.blocks)).toEqual([])
  expect(message.blocks.length).toBeLessThanOrEqual(Blocks.limits.blocks)
  expect(message.text.length).toBeGreaterThan(0)
  expect(message.text.length).toBeLessThanOrEqual(Blocks.limits.text)
  expect(Buffer.byteLength(JSON.stringify(message))).toBeLessThanOrEqual(Blocks.limits.payloadBytes)
  const markup = SlackStandIn.readMarkup(message.text, message.blocks)
  expect(markup.problems).toEqual([])
  return markup
}

describe("Blocks.render", () => {
  it("renders every one of the event types within Slack's limits", () => {
    expect(all).toHaveLength(Event.eventTypes.length)
    for (const event of [...all, unknownEvent]) {
      const message = Blocks.render(event, {
        dashboardUrl: "https://dashboard.workos.com/environment_01"
      })
      const markup = expectWithinLimits(message)
      expect(markup.mentions).toEqual([])
      const [header, summary] = message.blocks
      expect(header?.type).toBe("header")
      expect(summary?.type).toBe("section")
      // The event id and type are always there, in a context block.
      const context = JSON.stringify(message.blocks.filter((b) => b.type === "context"))
      expect(context).toContain(event.id)
      expect(context).toContain(event.event)
      expect(message.blocks.at(-1)).toMatchObject({ type: "actions" })
    }
  })

  it("stays within limits for fuzzed long and markup-laden payloads, and they never mention or link", () => {
    for (const [n, length] of [20, 400, 5000].entries()) {
      for (const event of [...all, unknownEvent]) {
        const message = Blocks.render(fuzzed(event, n * 1000 + all.indexOf(event), length))
        const markup = expectWithinLimits(message)
        expect(markup.mentions).toEqual([])
        expect(markup.links).toEqual([])
      }
    }
  })

  it("fits the payload budget even when every character takes three bytes", () => {
    const wide = "中".repeat(2000)
    const many = Array.from({ length: 30 }, (_, i) => `{{data.f${i}}}`).join(" ")
    const template = Template.compile(many) as Template.Template
    for (const event of [...all, unknownEvent]) {
      const data = Object.fromEntries(
        [...Object.keys(event.data), ...Array.from({ length: 30 }, (_, i) => `f${i}`)].map((k) => [
          k,
          wide
        ])
      )
      const heavy = {
        ...event,
        data,
        context: { actor: { id: wide, name: wide, source: wide } }
      } as Event.Any
      expectWithinLimits(Blocks.render(heavy, { template: { header: template, text: template } }))
      expectWithinLimits(Blocks.render(heavy))
    }
  })

  it("gives titles a person can read, for every type", () => {
    expect(Blocks.title("authentication.password_failed")).toBe("Password sign-in failed")
    expect(Blocks.title("authentication.sso_timed_out")).toBe("SSO sign-in timed out")
    expect(Blocks.title("dsync.user.updated")).toBe("Directory user updated")
    expect(Blocks.title("api_key.created")).toBe("API key created")
    const titles = new Set(Event.eventTypes.map(Blocks.title))
    expect(titles.size).toBe(Event.eventTypes.length)
  })

  it("shows an authentication failure's error code and message, IP and user agent", () => {
    const message = Blocks.render(examples["authentication.password_failed"])
    const json = JSON.stringify(message.blocks)
    expect(json).toContain("`mfa_challenge_failed`")
    expect(json).toContain("The MFA challenge has failed.")
    expect(json).toContain("203.0.113.42")
    expect(json).toContain("Mozilla/5.0")
    expect(message.blocks[0]).toEqual({
      type: "header",
      text: { type: "plain_text", text: ":rotating_light: Password sign-in failed", emoji: true }
    })
    expect(message.text).toBe("Password sign-in failed: *user@example.com* from 203.0.113.42")
  })

  it("shows what changed in a directory user update", () => {
    const example = examples["dsync.user.updated"]
    const event = {
      ...example,
      data: {
        ...example.data,
        job_title: "Staff Engineer",
        previous_attributes: { job_title: "Software Engineer", state: "suspended" }
      }
    } as Event.Any
    const json = JSON.stringify(Blocks.render(event).blocks)
    expect(json).toContain("What changed")
    expect(json).toContain("*Job title*: `Software Engineer` → `Staff Engineer`")
    expect(json).toContain("*State*: `suspended` → `active`")
  })

  it("reads what changed from the event's context too", () => {
    const example = examples["organization_membership.updated"]
    const event = {
      ...example,
      context: { ...example.context, previous_attributes: { status: "pending" } }
    } as Event.Any
    expect(JSON.stringify(Blocks.render(event).blocks)).toContain("*Status*: `pending` → `active`")
  })

  it("never shows more of an API key than its obfuscated value", () => {
    const example = examples["api_key.created"]
    const event = {
      ...example,
      data: {
        ...example.data,
        value: "sk_live_SECRET_1",
        key: "sk_live_SECRET_2",
        secret: "SECRET_3"
      }
    } as Event.Any
    const message = Blocks.render(event)
    const json = JSON.stringify(message)
    expect(json).not.toContain("SECRET")
    expect(json).toContain("`sk_test_...1234`")
    const updated = {
      ...examples["api_key.updated"],
      data: {
        ...examples["api_key.updated"].data,
        previous_attributes: { value: "sk_live_OLD_SECRET", name: "Old" }
      }
    } as Event.Any
    const updatedJson = JSON.stringify(Blocks.render(updated))
    expect(updatedJson).not.toContain("SECRET")
    expect(updatedJson).toContain("`Old` → `My API Key`")
  })

  it("shows connection and domain states", () => {
    const domain = JSON.stringify(
      Blocks.render(examples["organization_domain.verification_failed"]).blocks
    )
    expect(domain).toContain("foo-corp.com")
    expect(domain).toContain("domain_verification_period_expired")
    expect(domain).toContain("*State*\\npending")
    const connection = JSON.stringify(Blocks.render(examples["connection.activated"]).blocks)
    expect(connection).toContain("*State*\\nactive")
    expect(connection).toContain("OktaSAML")
    const certificate = JSON.stringify(
      Blocks.render(examples["connection.saml_certificate_renewal_required"]).blocks
    )
    expect(certificate).toContain("Expires in 30 days")
  })

  it("gives an event of an unknown type a generic message with its fields", () => {
    const message = Blocks.render(unknownEvent)
    const json = JSON.stringify(message.blocks)
    expect(json).toContain("New event type: widget.assembled")
    expect(json).toContain("Sprocket")
    expect(json).toContain("`widget_01ABCDEFGHIJKLMNOP`")
  })

  it("gives an event that breaks the spec the generic message, saying where, with its fields as sent", () => {
    const event = WorkOSStandIn.driftedEvent() as unknown as Event.Any
    const mismatch = { path: "data.resource_type_slug", reason: "required field is missing" }
    const message = Blocks.render(event, { mismatch })
    expect(message.blocks[0]).toMatchObject({
      type: "header",
      text: { text: ":grey_question: Organization role created" }
    })
    expect(message.text).toContain(
      "WorkOS sent `organization_role.created` with a payload that does not match the spec (`data.resource_type_slug`: required field is missing). Its fields are below, as sent."
    )
    const json = JSON.stringify(message.blocks)
    expect(json).toContain((event.data as { slug: string }).slug)
    expect(json).toContain(":warning: does not match the spec")
    // Without the mark, the same event of a known type gets its tailored message.
    expect(JSON.stringify(Blocks.render(event).blocks)).not.toContain("does not match the spec")
  })

  it("renders an event that breaks the spec whatever its payload, envelope and time hold", () => {
    const mismatch = { path: "data", reason: "Expected object" }
    for (const data of [null, 42, "text", [1, 2], undefined, { error: "x", user: 7 }]) {
      for (const type of ["api_key.created", "dsync.group.user_added", "session.created"]) {
        const event = {
          ...examples["user.created"],
          event: type,
          data,
          context: "not an object",
          created_at: 42
        } as unknown as Event.Any
        const message = Blocks.render(event, { mismatch })
        expect(message.text).toContain("does not match the spec")
        // No date from a number (`Date.parse(42)` would read the year 2042).
        expect(JSON.stringify(message.blocks)).not.toContain("<!date^")
        expect(Blocks.digest([event, event]).blocks.length).toBeGreaterThan(2)
      }
    }
  })

  it("escapes payload content so it cannot mention, link or format", () => {
    const example = examples["user.created"]
    const event = {
      ...example,
      data: {
        ...example.data,
        name: "<!channel> *urgent* <@U123> <https://evil.test|login>",
        first_name: "_x_"
      }
    } as Event.Any
    const message = Blocks.render(event)
    const markup = expectWithinLimits(message)
    expect(markup.mentions).toEqual([])
    expect(markup.links).toEqual([])
    const json = JSON.stringify(message)
    expect(json).toContain("&lt;!channel&gt;")
    expect(json).toContain("&lt;@U123&gt;")
    expect(json).not.toMatch(/ \*urgent\* /)
    // Bare @channel and #channel text is not parsed either: every mrkdwn text is verbatim.
    for (const block of message.blocks) {
      if (block.type === "section" && block.text !== undefined)
        expect(block.text.verbatim).toBe(true)
    }
  })

  it("escapes payload keys as well as values", () => {
    const nasty = "<!channel> *x*"
    const event = {
      ...unknownEvent,
      data: { [nasty]: "v", previous_attributes: { [nasty]: "old" } }
    } as Event.Any
    const markup = expectWithinLimits(Blocks.render(event))
    expect(markup.mentions).toEqual([])
    expect(JSON.stringify(Blocks.render(event))).toContain("&lt;!channel&gt;")
  })

  it("puts configured mentions before the summary, and only those", () => {
    const message = Blocks.render(examples["authentication.sso_failed"], {
      mentions: ["<!here>", "<@U024BE7LH>"]
    })
    const markup = expectWithinLimits(message)
    expect(markup.mentions).toEqual(["<!here>", "<@U024BE7LH>", "<!here>", "<@U024BE7LH>"])
    expect(message.text.startsWith("<!here> <@U024BE7LH> ")).toBe(true)
  })

  it("uses templates for the header and text, escaping the values they pull in", () => {
    const header = Template.compile("{{data.email}} could not sign in") as Template.Template
    const text = Template.compile(
      "*Failed* for {{data.email}}: `{{data.error.code}}` {{data.missing}}"
    ) as Template.Template
    const example = examples["authentication.password_failed"]
    const event = {
      ...example,
      data: { ...example.data, email: "<!channel>@example.com" }
    } as Event.Any
    const message = Blocks.render(event, { template: { header, text } })
    expect(message.blocks[0]).toMatchObject({
      text: { text: "<!channel>@example.com could not sign in" }
    })
    expect(message.blocks[1]).toMatchObject({
      text: { text: "*Failed* for &lt;!channel&gt;@example.com: `mfa_challenge_failed` " }
    })
    expect(expectWithinLimits(message).mentions).toEqual([])
  })

  it("links to the dashboard from a base URL or a template", () => {
    const event = examples["user.created"]
    const base = Blocks.render(event, { dashboardUrl: "https://dashboard.workos.com/env/" })
    expect(base.blocks.at(-1)).toMatchObject({
      elements: [{ url: `https://dashboard.workos.com/env/events/${event.id}` }]
    })
    const templated = Blocks.render(event, {
      dashboardUrl: "https://dashboard.workos.com/users/{{data.id}}?e={{id}}"
    })
    expect(templated.blocks.at(-1)).toMatchObject({
      elements: [{ url: `https://dashboard.workos.com/users/${event.data.id}?e=${event.id}` }]
    })
  })
})

describe("Blocks.digest", () => {
  it("summarises many events in one message within limits", () => {
    const events = Array.from({ length: 600 }, (_, i) =>
      fuzzed(all[i % all.length]!, i, i % 7 === 0 ? 3000 : 30)
    )
    const message = Blocks.digest(events, { mentions: ["<!here>"] })
    const markup = expectWithinLimits(message)
    expect(markup.mentions).toEqual(["<!here>", "<!here>"])
    expect(message.blocks[0]).toMatchObject({
      type: "header",
      text: { text: ":bookmark_tabs: 600 WorkOS events" }
    })
  })

  it("counts events by type", () => {
    const events = [examples["user.created"], examples["user.created"], examples["user.deleted"]]
    const message = Blocks.digest(events)
    expect(JSON.stringify(message.blocks)).toContain("2 × User created")
    expect(JSON.stringify(message.blocks)).toContain("1 × User deleted")
    expectWithinLimits(message)
  })
})

describe("gallery/messages.json", () => {
  it("holds every type's current message, each a payload the Block Kit checks accept", async () => {
    const { readFile } = await import("node:fs/promises")
    const gallery = JSON.parse(
      await readFile(new URL("../gallery/messages.json", import.meta.url), "utf8")
    )
    for (const event of all) {
      const payload = gallery[event.event]
      expect(payload).toEqual({
        blocks: Blocks.render(event, { dashboardUrl: "https://dashboard.workos.com" }).blocks
      })
      expect(SlackStandIn.checkBlocks(payload.blocks)).toEqual([])
    }
    expect(Object.keys(gallery)).toHaveLength(all.length + 1)
  })
})
