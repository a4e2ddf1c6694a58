import { SlackStandIn } from "@workos-relay/testing"
import * as SinkConformance from "@workos-relay/testing/SinkConformance"
import * as Effect from "effect/Effect"
import { definition } from "../src/index.ts"

// The conformance suite every sink must pass, against the Slack stand-in with a
// per-channel rate limit and a few faults queued, so retries are part of what it checks.
let standIn: SlackStandIn.SlackStandIn | undefined

SinkConformance.suite({
  definition,
  config: () =>
    Effect.gen(function* () {
      standIn = yield* SlackStandIn.make({ rateLimit: { perSecond: 40, burst: 15 } })
      standIn.fault({ status: 503 }, { status: 429, retryAfter: 1 }, { error: "internal_error" })
      return { token: standIn.token, channel: "#general", slackApiUrl: standIn.url, pacing: "off" }
    }),
  badConfigs: [
    { config: { channel: "Not A Channel" }, path: "channel" },
    {
      config: { channel: "#ok", routes: [{ events: ["dsync.usr.*"], channel: "#x" }] },
      path: "routes[0].events[0]"
    },
    {
      config: { channel: "#ok", mentions: [{ events: ["*"], mention: ["@jane"] }] },
      path: "mentions[0].mention[0]"
    },
    {
      config: { channel: "#ok", templates: [{ events: ["*"], header: "{{oops" }] },
      path: "templates[0].header"
    },
    { config: { channel: "#ok", pacing: { perSecond: -1 } }, path: "pacing.perSecond" },
    { config: { channel: "#ok", timeoutSeconds: 0 }, path: "timeoutSeconds" },
    { config: { channel: "#ok", token: "" }, path: "token" }
  ],
  received: () =>
    Effect.sync(() =>
      (standIn?.messages() ?? []).flatMap(
        (message) => JSON.stringify(message.blocks).match(/event_conformance_\d+/) ?? []
      )
    )
})
