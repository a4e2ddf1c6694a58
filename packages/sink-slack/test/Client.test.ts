import { describe, expect, it } from "@effect/vitest"
import { SlackStandIn } from "@workos-relay/testing"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Client from "../src/Client.ts"

const message = { text: "hello", blocks: [] }

describe("Client", () => {
  it.live("does not retry by itself: 429, 5xx and Slack errors come back at once, typed", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make()
      const client = Client.make({
        token: Redacted.make(standIn.token),
        slackApiUrl: standIn.url,
        timeout: "5 seconds"
      })
      standIn.fault(
        { status: 429, retryAfter: 30 },
        { status: 502 },
        { error: "channel_not_found" }
      )
      const started = Date.now()
      const limited = yield* Effect.flip(client.postMessage("general", message))
      expect(limited).toEqual(new Client.SlackRateLimited({ retryAfter: Duration.seconds(30) }))
      const unavailable = yield* Effect.flip(client.postMessage("general", message))
      expect(unavailable).toMatchObject({ _tag: "SlackUnavailable", status: 502 })
      const refused = yield* Effect.flip(client.postMessage("general", message))
      expect(refused).toEqual(new Client.SlackApiError({ error: "channel_not_found" }))
      // None was waited out: a client sleeping on the 30 s Retry-After itself would take longer.
      expect(Date.now() - started).toBeLessThan(20_000)
      expect(standIn.calls()).toHaveLength(3)
    })
  )

  it.live("gives up after its timeout, and passes on Slack's detail for invalid blocks", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make()
      const client = Client.make({
        token: Redacted.make(standIn.token),
        slackApiUrl: standIn.url,
        timeout: "200 millis"
      })
      standIn.fault({ delay: 1000 })
      const slow = yield* Effect.flip(client.postMessage("general", message))
      expect(slow).toEqual(new Client.SlackUnavailable({ reason: "Slack did not answer in time" }))
      const invalid = yield* Effect.flip(
        client.postMessage("general", {
          text: "x",
          blocks: [{ type: "header", text: { type: "plain_text", text: "x".repeat(200) } }]
        })
      )
      expect(invalid).toEqual(
        new Client.SlackApiError({
          error: "invalid_blocks",
          detail: "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]"
        })
      )
      const who = yield* client.authTest
      expect(who).toEqual({ team: "Stand-in", user: "workos-relay", botId: "B0STANDIN" })
    })
  )

  it.live("could not reach Slack: a typed, retryable error", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make()
      const url = standIn.url
      yield* Effect.promise(() => standIn.close())
      const client = Client.make({
        token: Redacted.make("xoxb-x"),
        slackApiUrl: url,
        timeout: "1 second"
      })
      const error = yield* Effect.flip(client.postMessage("general", message))
      expect(error._tag).toBe("SlackUnavailable")
      expect(error.message).toContain("could not reach Slack")
    })
  )
})
