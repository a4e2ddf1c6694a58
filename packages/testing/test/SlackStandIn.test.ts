import { describe, expect, it } from "@effect/vitest"
import { ErrorCode, WebClient } from "@slack/web-api"
import * as Effect from "effect/Effect"
import { SlackStandIn } from "../src/index.ts"

const client = (standIn: SlackStandIn.SlackStandIn, token = standIn.token) =>
  new WebClient(token, {
    slackApiUrl: standIn.url,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    logger: {
      debug() {},
      info() {},
      warn() {},
      error() {},
      setLevel() {},
      getLevel: () => "error" as any,
      setName() {}
    }
  })

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected the call to fail")
    },
    (error: any) => error
  )

const section = (text: string) => ({ type: "section", text: { type: "mrkdwn", text } })

describe("SlackStandIn", () => {
  it.live("takes chat.postMessage as form data from the real client, and records it", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make()
      const result = yield* Effect.promise(() =>
        client(standIn).chat.postMessage({
          channel: "#general",
          text: "hi <!here>",
          blocks: [section("*hello* <@U024BE7LH>")] as any
        })
      )
      expect(result.ok).toBe(true)
      expect(result.channel).toBe("C0000GENERAL")
      const [message] = standIn.messages()
      expect(message?.text).toBe("hi <!here>")
      expect(message?.blocks).toEqual([section("*hello* <@U024BE7LH>")])
      expect(message?.mentions).toEqual(["<!here>", "<@U024BE7LH>"])
      expect(standIn.calls()[0]?.contentType).toBe("application/x-www-form-urlencoded")
    })
  )

  it.live("takes JSON bodies with a bearer token, and answers auth.test", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make()
      const answer = yield* Effect.promise(() =>
        fetch(`${standIn.url}chat.postMessage`, {
          method: "POST",
          headers: {
            "content-type": "application/json; charset=utf-8",
            authorization: `Bearer ${standIn.token}`
          },
          body: JSON.stringify({ channel: "C00000ALERTS", text: "json" })
        }).then((r) => r.json())
      )
      expect(answer).toMatchObject({ ok: true, channel: "C00000ALERTS" })
      const noAuth = yield* Effect.promise(() =>
        fetch(`${standIn.url}chat.postMessage`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ channel: "C00000ALERTS", text: "json", token: standIn.token })
        }).then((r) => r.json())
      )
      // Slack reads no token from a JSON body.
      expect(noAuth).toEqual({ ok: false, error: "not_authed" })
      const who = yield* Effect.promise(() => client(standIn).auth.test())
      expect(who).toMatchObject({ ok: true, team_id: "T0STANDIN", bot_id: "B0STANDIN" })
    })
  )

  it.live("answers token and channel errors with ok:false and HTTP 200", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make({
        channels: [
          { id: "C1", name: "old", archived: true },
          { id: "C2", name: "private", member: false }
        ]
      })
      const errorOf = (token: string, channel: string) =>
        Effect.promise(() =>
          failure(client(standIn, token).chat.postMessage({ channel, text: "x" }))
        ).pipe(Effect.map((e) => [e.code, e.data?.error]))
      expect(yield* errorOf("xoxb-wrong", "#old")).toEqual([
        ErrorCode.PlatformError,
        "invalid_auth"
      ])
      expect(yield* errorOf(standIn.token, "#nowhere")).toEqual([
        ErrorCode.PlatformError,
        "channel_not_found"
      ])
      expect(yield* errorOf(standIn.token, "#old")).toEqual([
        ErrorCode.PlatformError,
        "is_archived"
      ])
      expect(yield* errorOf(standIn.token, "C2")).toEqual([
        ErrorCode.PlatformError,
        "not_in_channel"
      ])
      standIn.revokeToken()
      expect(yield* errorOf(standIn.token, "C1")).toEqual([
        ErrorCode.PlatformError,
        "token_revoked"
      ])
      expect(standIn.messages()).toEqual([])
    })
  )

  it.live("checks Block Kit limits as Slack does", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make({ channels: [{ id: "C1", name: "general" }] })
      const post = (blocks: unknown, text = "fallback") =>
        Effect.promise(() =>
          failure(client(standIn).chat.postMessage({ channel: "C1", text, blocks: blocks as any }))
        )
      const tooMany = yield* post(Array.from({ length: 51 }, () => ({ type: "divider" })))
      expect(tooMany.data.error).toBe("invalid_blocks")
      expect(tooMany.data.response_metadata.messages).toEqual([
        "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"
      ])
      const header = yield* post([
        { type: "header", text: { type: "plain_text", text: "x".repeat(151) } }
      ])
      expect(header.data.response_metadata.messages).toEqual([
        "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]"
      ])
      const fields = yield* post([
        {
          type: "section",
          fields: Array.from({ length: 11 }, () => ({ type: "mrkdwn", text: "f" }))
        },
        section("y".repeat(3001))
      ])
      expect(fields.data.response_metadata.messages).toEqual([
        "[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/fields]",
        "[ERROR] must be less than 3001 characters [json-pointer:/blocks/1/text/text]"
      ])
      const mrkdwnHeader = yield* post([{ type: "header", text: { type: "mrkdwn", text: "x" } }])
      expect(mrkdwnHeader.data.error).toBe("invalid_blocks")
      const long = yield* post(undefined, "z".repeat(40_001))
      expect(long.data.error).toBe("msg_too_long")
      // Right at the limits is fine.
      yield* Effect.promise(() =>
        client(standIn).chat.postMessage({
          channel: "C1",
          text: "ok",
          blocks: [
            { type: "header", text: { type: "plain_text", text: "h".repeat(150) } },
            {
              type: "section",
              fields: Array.from({ length: 10 }, () => ({ type: "mrkdwn", text: "f".repeat(1000) }))
            }
          ] as any
        })
      )
      expect(standIn.messages()).toHaveLength(1)
    })
  )

  it.live("serves faults in order, 429 with Retry-After, and a per-channel rate limit", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make({ rateLimit: { perSecond: 1, burst: 2 } })
      const slack = client(standIn)
      standIn.fault({ status: 429, retryAfter: 7 }, { status: 503 }, { error: "missing_scope" })
      const limited = yield* Effect.promise(() =>
        failure(slack.chat.postMessage({ channel: "general", text: "1" }))
      )
      expect([limited.code, limited.retryAfter]).toEqual([ErrorCode.RateLimitedError, 7])
      const unavailable = yield* Effect.promise(() =>
        failure(slack.chat.postMessage({ channel: "general", text: "2" }))
      )
      expect([unavailable.code, unavailable.statusCode]).toEqual([ErrorCode.HTTPError, 503])
      const scope = yield* Effect.promise(() =>
        failure(slack.chat.postMessage({ channel: "general", text: "3" }))
      )
      expect(scope.data.error).toBe("missing_scope")
      // The rate limit: a burst of two per channel, then 429; another channel has its own.
      yield* Effect.promise(() => slack.chat.postMessage({ channel: "general", text: "a" }))
      yield* Effect.promise(() => slack.chat.postMessage({ channel: "general", text: "b" }))
      const third = yield* Effect.promise(() =>
        failure(slack.chat.postMessage({ channel: "general", text: "c" }))
      )
      expect(third.code).toBe(ErrorCode.RateLimitedError)
      expect(third.retryAfter).toBeGreaterThanOrEqual(1)
      yield* Effect.promise(() => slack.chat.postMessage({ channel: "alerts", text: "d" }))
      expect(standIn.messages().map((m) => m.text)).toEqual(["a", "b", "d"])
      // A fault for a while.
      standIn.faultFor(10_000, { status: 503 })
      for (const text of ["e", "f"]) {
        const e = yield* Effect.promise(() =>
          failure(slack.chat.postMessage({ channel: "alerts", text }))
        )
        expect(e.statusCode).toBe(503)
      }
    })
  )

  it("reads markup: mentions, links, and what Slack would misread", () => {
    const read = SlackStandIn.readMarkup("<!channel> &amp; <https://x.test|x> &lt;@U1&gt;", [
      section("a < b & c <!subteam^S123|@team>")
    ])
    expect(read.mentions).toEqual(["<!channel>", "<!subteam^S123>"])
    expect(read.links).toEqual(["<https://x.test|x>"])
    expect(read.problems).toHaveLength(2)
  })
})
