/**
 * Which channel an event goes to, who gets mentioned, and which template
 * dresses it: compiled once from the config, then a few lookups per event.
 */
import { type Event, EventPattern, Sink } from "@workos-relay/core"
import * as Blocks from "./Blocks.ts"
import type { Config } from "./Config.ts"
import * as Template from "./Template.ts"

/** Where one event goes and how its message looks. */
export interface Routed {
  readonly channel: string
  readonly options: Blocks.Options
}

/**
 * A typed message override for library users (see `Sink.define`). It is not asked
 * about an event that breaks the spec, which gets the generic message.
 */
export type Format = (event: Event.Any) => Blocks.Override | undefined

const matcher = (patterns: ReadonlyArray<string>): ((name: string) => boolean) => {
  // Matching by name (not by the known catalogue) so "*" also takes unknown types.
  return (name) => patterns.some((pattern) => EventPattern.matchesName(pattern, name))
}

const mentionMarkup = (mention: string): string =>
  mention === "here" || mention === "channel" || mention === "everyone"
    ? `<!${mention}>`
    : mention.startsWith("S")
      ? `<!subteam^${mention}>`
      : `<@${mention}>`

const compileTemplate = (source: string | undefined): Template.Template | undefined => {
  if (source === undefined) return undefined
  const compiled = Template.compile(source)
  // The config schema has already refused bad templates.
  return "error" in compiled ? undefined : compiled
}

/** Compiles the routing of a decoded config. */
export const make = (config: Config, format?: Format): ((event: Event.Any) => Routed) => {
  const routes = (config.routes ?? []).map((route) => ({
    channel: route.channel,
    events: route.events === undefined ? undefined : matcher(route.events),
    organizations: route.organizations === undefined ? undefined : new Set(route.organizations)
  }))
  const mentions = (config.mentions ?? []).map((m) => ({
    matches: matcher(m.events),
    markup: m.mention.map(mentionMarkup)
  }))
  const templates = (config.templates ?? []).map((t) => {
    const header = compileTemplate(t.header)
    const text = compileTemplate(t.text)
    return {
      matches: matcher(t.events),
      template: {
        ...(header !== undefined ? { header } : {}),
        ...(text !== undefined ? { text } : {})
      }
    }
  })
  const cache = new Map<
    string,
    { mentions: ReadonlyArray<string>; template: Blocks.Options["template"] }
  >()

  return (event) => {
    const organization = Blocks.organizationId(event)
    const route = routes.find(
      (r) =>
        (r.events === undefined || r.events(event.event)) &&
        (r.organizations === undefined ||
          (organization !== undefined && r.organizations.has(organization)))
    )
    // Mentions and templates depend on the type alone: worked out once per type.
    let byType = cache.get(event.event)
    if (byType === undefined) {
      const markup = [
        ...new Set(mentions.filter((m) => m.matches(event.event)).flatMap((m) => m.markup))
      ]
      byType = {
        mentions: markup,
        template: templates.find((t) => t.matches(event.event))?.template
      }
      cache.set(event.event, byType)
    }
    // A typed override reads the typed payload: an event that breaks the spec gets the
    // generic message instead.
    const mismatch = Sink.mismatchOf(event)
    const override = mismatch === undefined ? format?.(event) : undefined
    const options: Blocks.Options = {
      ...(mismatch !== undefined ? { mismatch } : {}),
      ...(byType.mentions.length > 0 ? { mentions: byType.mentions } : {}),
      ...(byType.template !== undefined ? { template: byType.template } : {}),
      ...(override !== undefined ? { override } : {}),
      ...(config.dashboardUrl !== undefined ? { dashboardUrl: config.dashboardUrl } : {})
    }
    return { channel: route?.channel ?? config.channel, options }
  }
}
