/**
 * The options of a `type: slack` sink, as written in the runner's config file.
 *
 * Every check names what is wrong and where (`at ["routes"][1]["events"][0]`):
 * event patterns are checked against the catalogue of WorkOS event types,
 * templates are parsed, mentions and channels have to look like Slack's.
 */
import { Event, EventPattern } from "@workos-relay/core"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Template from "./Template.ts"

/** An event type pattern that matches at least one known WorkOS event type. */
export const Pattern = Schema.String.check(
  Schema.makeFilter((pattern: string) => {
    const checked = EventPattern.validate([pattern])
    return Result.isSuccess(checked) ? undefined : checked.failure.message
  })
).annotate({ identifier: "EventPattern" })

/** A channel: its ID (`C0123ABCD`) or its name (`#security-alerts` or `security-alerts`). */
export const Channel = Schema.String.check(
  Schema.isPattern(/^#?[a-z0-9][a-z0-9._-]{0,79}$|^[CGD][A-Z0-9]{6,}$/, {
    message:
      "a channel is an ID like C0123ABCD or a name like #security-alerts (lower case, digits, - _ .)"
  })
)

/**
 * Who to mention: `here`, `channel`, `everyone`, a user ID (`U024BE7LH`) or a
 * user group ID (`S0614TZR7`).
 */
export const Mention = Schema.String.check(
  Schema.isPattern(/^(here|channel|everyone|[UW][A-Z0-9]{2,}|S[A-Z0-9]{2,})$/, {
    message:
      "a mention is here, channel, everyone, a user ID like U024BE7LH or a user group ID like S0614TZR7"
  })
)

/** A `{{path}}` template. */
export const TemplateText = Schema.String.check(
  Schema.makeFilter((source: string) => {
    const compiled = Template.compile(source)
    return "error" in compiled ? `bad template: ${compiled.error}` : undefined
  })
)

const Patterns = Schema.NonEmptyArray(Pattern)

/** Events of these types and/or of these organizations go to `channel`. */
export const Route = Schema.Struct({
  events: Schema.optionalKey(Patterns),
  organizations: Schema.optionalKey(Schema.NonEmptyArray(Event.OrganizationId)),
  channel: Channel
}).check(
  Schema.makeFilter((route) =>
    route.events === undefined && route.organizations === undefined
      ? "a route needs `events`, `organizations` or both"
      : undefined
  )
)
export type Route = typeof Route.Type

/** Mentions for events of these types (every matching entry adds its mentions). */
export const Mentions = Schema.Struct({
  events: Patterns,
  mention: Schema.NonEmptyArray(Mention)
})
export type Mentions = typeof Mentions.Type

/**
 * The first `{{path}}` of a template that names no field of any of these event types:
 * misspelt, it would print nothing for every event.
 */
const unknownPath = (
  template: Template.Template,
  types: ReadonlyArray<Event.Type>
): string | undefined => {
  for (const part of template.parts) {
    if (!("path" in part)) continue
    const problem = Event.pathProblem(types, part.path)
    if (problem !== undefined) return `{{${part.path.join(".")}}}: ${problem}`
  }
  return undefined
}

/** A header and/or a summary line for events of these types (the first matching entry wins). */
export const Templates = Schema.Struct({
  events: Patterns,
  header: Schema.optionalKey(TemplateText),
  text: Schema.optionalKey(TemplateText)
}).check(
  Schema.makeFilter((t) => {
    if (t.header === undefined && t.text === undefined)
      return "a template needs `header`, `text` or both"
    const types = EventPattern.expand(t.events)
    for (const [key, source] of [
      ["header", t.header],
      ["text", t.text]
    ] as const) {
      const compiled = source === undefined ? undefined : Template.compile(source)
      const problem =
        compiled === undefined || "error" in compiled ? undefined : unknownPath(compiled, types)
      if (problem !== undefined) return `${key}: ${problem}`
    }
    return undefined
  })
)
export type Templates = typeof Templates.Type

const Positive = Schema.Number.check(Schema.isGreaterThan(0))
const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/** At most `perSecond` messages a second per channel, with bursts of up to `burst`; or `off`. */
export const Pacing = Schema.Union([
  Schema.Literal("off"),
  Schema.Struct({
    perSecond: Schema.optionalKey(Positive),
    burst: Schema.optionalKey(Count)
  })
])
export type Pacing = typeof Pacing.Type

/** When one batch has more than `threshold` events for a channel, send one summary message instead. */
export const Digest = Schema.Struct({
  threshold: Schema.Int.check(Schema.isGreaterThanOrEqualTo(2))
})
export type Digest = typeof Digest.Type

/** A secret: a plain string in a config file, or an already redacted value. */
export const Secret = Schema.Union([
  Schema.Redacted(Schema.String),
  Schema.RedactedFromValue(Schema.NonEmptyString)
])

export const Config = Schema.Struct({
  /** The bot token (`xoxb-...`); `SLACK_BOT_TOKEN` when absent. */
  token: Schema.optionalKey(Secret),
  /** Where events go when no route matches. */
  channel: Channel,
  routes: Schema.optionalKey(Schema.Array(Route)),
  mentions: Schema.optionalKey(Schema.Array(Mentions)),
  templates: Schema.optionalKey(Schema.Array(Templates)),
  /** A base URL (`/events/<id>` is added) or a `{{path}}` template for an "Open in WorkOS" button. */
  dashboardUrl: Schema.optionalKey(
    Schema.String.check(
      Schema.isPattern(/^https?:\/\/\S+$/, { message: "dashboardUrl is an http(s) URL" }),
      Schema.makeFilter((url: string) => {
        if (!url.includes("{{")) return undefined
        const compiled = Template.compile(url)
        if ("error" in compiled) return `bad template: ${compiled.error}`
        // For every event: each path must name a field of at least one event type.
        return unknownPath(compiled, EventPattern.expand(["*"]))
      })
    )
  ),
  /** Slack's Web API base URL (`https://slack.com/api/`); change it only to point at a stand-in. */
  slackApiUrl: Schema.optionalKey(
    Schema.String.check(
      Schema.isPattern(/^https?:\/\/\S+$/, { message: "slackApiUrl is an http(s) URL" })
    )
  ),
  /** How long one Slack call may take, in seconds (default 10). */
  timeoutSeconds: Schema.optionalKey(Positive),
  pacing: Schema.optionalKey(Pacing),
  digest: Schema.optionalKey(Digest)
})
export type Config = typeof Config.Type

/** Default pacing: Slack allows about one message a second per channel, with short bursts. */
export const defaultPacing = { perSecond: 1, burst: 3 } as const
export const defaultTimeoutSeconds = 10
