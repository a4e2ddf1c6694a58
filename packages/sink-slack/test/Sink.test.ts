import { describe, expect, it } from "@effect/vitest"
import { Event, Sink } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import { Ports, SlackStandIn, WorkOSStandIn } from "@workos-relay/testing"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/testing/TestClock"
import { definition, SlackSink } from "../src/index.ts"
import { deliverAll } from "./support/Driver.ts"

const all = Object.values(examples) as ReadonlyArray<Event.Any>

/** Events with ids of their own (the spec's examples share one), in order. */
const numbered = (events: ReadonlyArray<Event.Any>, prefix = "evt"): Array<Event.Any> =>
  events.map(
    (event, i) => ({ ...event, id: `${prefix}_${String(i).padStart(5, "0")}` }) as Event.Any
  )

const channels: ReadonlyArray<SlackStandIn.Channel> = [
  { id: "C0000GENERAL", name: "general" },
  { id: "C000SECURITY", name: "security" },
  { id: "C00000DSYNC0", name: "dsync" },
  { id: "C000ARCHIVED", name: "old", archived: true },
  { id: "C0000OUTSIDE", name: "outside", member: false }
]

const makeSink = (standIn: SlackStandIn.SlackStandIn, options: Record<string, unknown> = {}) =>
  definition.make(
    Schema.decodeUnknownSync(definition.config)(
      {
        token: standIn.token,
        channel: "#general",
        slackApiUrl: standIn.url,
        pacing: "off",
        ...options
      },
      { onExcessProperty: "error" }
    ),
    { name: "slack-test" }
  )

/** The event id each recorded message carries, per channel, in the order Slack accepted them. */
const idsByChannel = (standIn: SlackStandIn.SlackStandIn): Record<string, Array<string>> => {
  const out: Record<string, Array<string>> = {}
  for (const message of standIn.messages()) {
    const id = /`(evt_\d+|[a-z]+_\d{5})`/.exec(JSON.stringify(message.blocks))?.[1] ?? "?"
    out[message.channelName] = [...(out[message.channelName] ?? []), id]
  }
  return out
}

/** Waits on the machine's clock, which the test clock does not stop. */
const realSleep = (ms: number) =>
  Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

const realWaitUntil = (done: () => boolean, timeout = 15_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeout
    while (!done()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error("timed out waiting"))
      yield* realSleep(10)
    }
  })

const sinkFailure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (error === undefined) throw new Error(`expected a typed failure, got ${String(exit.cause)}`)
  return (error as any).error as E
}

describe("Slack sink", () => {
  it.live("delivers every event type, routed by pattern and organization, with mentions", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make({ channels })
      const sink = yield* makeSink(standIn, {
        routes: [
          { events: ["authentication.*_failed"], channel: "#security" },
          {
            events: ["dsync.*"],
            organizations: ["org_01EZTR6WYX1A0DSE2CYMGXQ24Y"],
            channel: "C00000DSYNC0"
          },
          // Never reached for failures: the first match wins.
          { events: ["authentication.*"], channel: "#dsync" }
        ],
        mentions: [{ events: ["authentication.*_failed"], mention: ["here", "U024BE7LH"] }]
      })
      const events = numbered(all)
      const result = yield* deliverAll(sink, events)
      expect(result.rounds).toBe(1)
      expect(result.outcomes.every((o) => o._tag === "Delivered")).toBe(true)
      expect(standIn.messages()).toHaveLength(all.length)
      for (const message of standIn.messages()) {
        const id = /`(evt_\d+)`/.exec(JSON.stringify(message.blocks))![1]!
        const event = events.find((e) => e.id === id)!
        const failed = /^authentication\..*_failed$/.test(event.event)
        const dsync =
          event.event.startsWith("dsync.") &&
          JSON.stringify(event.data).includes("org_01EZTR6WYX1A0DSE2CYMGXQ24Y")
        const expected = failed
          ? "security"
          : dsync
            ? "dsync"
            : event.event.startsWith("authentication.")
              ? "dsync"
              : "general"
        expect([event.event, message.channelName]).toEqual([event.event, expected])
        expect(message.mentions).toEqual(
          failed ? ["<!here>", "<@U024BE7LH>", "<!here>", "<@U024BE7LH>"] : []
        )
        expect(message.markupProblems).toEqual([])
        expect(message.params).toMatchObject({
          parse: "none",
          link_names: "false",
          unfurl_links: "false"
        })
      }
    })
  )

  it.live(
    "a 429 storm: everything delivered, in order per channel, no duplicates, Retry-After honoured",
    () =>
      Effect.gen(function* () {
        const standIn = yield* SlackStandIn.make({
          channels,
          rateLimit: { perSecond: 50, burst: 8 }
        })
        const sink = yield* makeSink(standIn, {
          routes: [
            { events: ["user.*"], channel: "#security" },
            { events: ["dsync.*"], channel: "#dsync" }
          ]
        })
        standIn.fault(
          { status: 429, retryAfter: 1, channel: "general" },
          { status: 429, retryAfter: 1, channel: "security" },
          { status: 429, retryAfter: 1, channel: "general" }
        )
        const types = ["user.created", "dsync.user.updated", "organization.updated"] as const
        const events = numbered(
          Array.from({ length: 45 }, (_, i) => examples[types[i % 3]!] as Event.Any)
        )
        const result = yield* deliverAll(sink, events)
        expect(result.outcomes.every((o) => o._tag === "Delivered")).toBe(true)
        expect(result.rounds).toBeGreaterThan(1)
        expect(result.retries.some((r) => r.after === 1000)).toBe(true)

        const expected: Record<string, Array<string>> = { general: [], security: [], dsync: [] }
        events.forEach((event, i) => {
          expected[["security", "dsync", "general"][i % 3]!]!.push(event.id)
        })
        expect(idsByChannel(standIn)).toEqual(expected)
        // Nothing was sent to a channel before its Retry-After had passed.
        const calls = standIn.calls()
        let checked = 0
        calls.forEach((call, i) => {
          if (call.answer !== "http 429") return
          const next = calls.slice(i + 1).find((c) => c.channel === call.channel)
          if (next === undefined) return
          expect(next.at - call.at).toBeGreaterThanOrEqual(950)
          checked++
        })
        expect(checked).toBeGreaterThanOrEqual(3)
      })
  )

  it.live(
    "retries 5xx for that event and the channel's later ones, while other channels go on",
    () =>
      Effect.gen(function* () {
        const standIn = yield* SlackStandIn.make({ channels })
        const sink = yield* makeSink(standIn, {
          routes: [{ events: ["user.*"], channel: "#security" }]
        })
        standIn.fault({ status: 503, channel: "general" })
        const events = numbered([
          examples["organization.created"],
          examples["user.created"],
          examples["organization.updated"],
          examples["user.deleted"]
        ])
        const outcomes = yield* sink.deliver(events)
        expect(outcomes.map((o) => o._tag)).toEqual(["Retry", "Delivered", "Retry", "Delivered"])
        expect((outcomes[0] as Sink.Retry).reason).toContain("HTTP 503")
        expect((outcomes[2] as Sink.Retry).reason).toContain(
          "an earlier event for #general is waiting"
        )
        // Only one call went to #general: nothing overtakes the event that must be retried.
        expect(standIn.calls().filter((c) => c.channel === "C0000GENERAL")).toHaveLength(1)
      })
  )

  it.live("retries a call that times out, and Slack's own transient errors", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make({ channels })
      const sink = yield* makeSink(standIn, { timeoutSeconds: 0.2 })
      standIn.fault({ delay: 1000 }, { error: "internal_error" })
      const [first, second] = numbered([examples["user.created"], examples["user.updated"]])
      expect(yield* sink.deliver([first!])).toEqual([Sink.retry("Slack did not answer in time")])
      expect(yield* sink.deliver([second!])).toEqual([Sink.retry("Slack error internal_error")])
      expect(yield* sink.deliver([first!, second!])).toEqual([Sink.delivered, Sink.delivered])
    })
  )

  it.live(
    "dead-letters refused messages with Slack's error, and skips a channel that cannot be posted to",
    () =>
      Effect.gen(function* () {
        const standIn = yield* SlackStandIn.make({ channels })
        const sink = yield* makeSink(standIn, {
          routes: [
            { events: ["user.*"], channel: "#missing" },
            { events: ["dsync.*"], channel: "#old" },
            { events: ["session.*"], channel: "#outside" }
          ]
        })
        standIn.fault(
          { error: "msg_too_long", channel: "general" },
          { error: "invalid_blocks", channel: "general" }
        )
        const events = numbered([
          examples["user.created"],
          examples["user.deleted"],
          examples["dsync.user.created"],
          examples["session.created"],
          examples["organization.created"],
          examples["organization.updated"],
          examples["organization.deleted"]
        ])
        const outcomes = yield* sink.deliver(events)
        const reasons = outcomes.map((o) => (o._tag === "Rejected" ? o.reason : o._tag))
        expect(reasons).toEqual([
          "Slack refused the message for #missing: channel_not_found: no such channel, or a private one the app is not in: check the name or ID, or /invite the app",
          "Slack refused the message for #missing: channel_not_found: no such channel, or a private one the app is not in: check the name or ID, or /invite the app",
          "Slack refused the message for #old: is_archived: the channel is archived: unarchive it, or route these events to another channel",
          "Slack refused the message for #outside: not_in_channel: the app is not in the channel: /invite it there, or give the app the chat:write.public scope (public channels)",
          "Slack refused the message for #general: msg_too_long",
          "Slack refused the message for #general: invalid_blocks",
          "Delivered"
        ])
        // The second event for #missing was not sent: the channel's answer was already known.
        expect(standIn.calls().filter((c) => c.answer === "channel_not_found")).toHaveLength(1)
      })
  )

  it.live("stops with SinkFatal when the token stops working, whichever way", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make({ channels })
      const sink = yield* makeSink(standIn)
      const [event] = numbered([examples["user.created"]])
      for (const error of ["missing_scope", "account_inactive", "not_authed", "invalid_auth"]) {
        standIn.fault({ error })
        const failure = sinkFailure(yield* Effect.exit(sink.deliver([event!])))
        expect(failure).toBeInstanceOf(Sink.SinkFatal)
        expect((failure as Sink.SinkFatal).reason).toContain(`Slack refused the token (${error})`)
      }
      standIn.revokeToken()
      const revoked = sinkFailure(yield* Effect.exit(sink.deliver([event!])))
      expect((revoked as Sink.SinkFatal).reason).toBe(
        "Slack refused the token (token_revoked): the token was revoked; reinstall the Slack app and update the token"
      )
      // A revoked token is found at start too, before any event.
      const atStart = sinkFailure(yield* Effect.exit(makeSink(standIn)))
      expect(atStart).toBeInstanceOf(Sink.SinkFatal)
    })
  )

  it.live("check: reaches Slack, says when it cannot, stops on a refused token", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make({ channels })
      const sink = yield* makeSink(standIn)
      yield* sink.check!
      // Nothing was sent: a check is not a delivery.
      expect(standIn.messages()).toEqual([])

      // Made while Slack is unreachable (deliveries would retry), the check says so.
      const closed = yield* Effect.promise(Ports.freePort)
      const unreachable = yield* makeSink(standIn, {
        slackApiUrl: `http://127.0.0.1:${closed}/api/`,
        timeoutSeconds: 1
      })
      const failure = sinkFailure(yield* Effect.exit(unreachable.check!))
      expect(failure).toBeInstanceOf(Sink.SinkUnavailable)
      expect((failure as Sink.SinkUnavailable).reason).toBe(
        `could not check the Slack token: could not reach Slack: connect ECONNREFUSED 127.0.0.1:${closed}`
      )

      standIn.revokeToken()
      const refused = sinkFailure(yield* Effect.exit(sink.check!))
      expect(refused).toBeInstanceOf(Sink.SinkFatal)
      expect((refused as Sink.SinkFatal).reason).toContain(
        "Slack refused the token (token_revoked)"
      )
    })
  )

  it.live("takes the token from SLACK_BOT_TOKEN, and says so when there is none", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make({ channels })
      const config = Schema.decodeUnknownSync(definition.config)({
        channel: "#general",
        slackApiUrl: standIn.url,
        pacing: "off"
      })
      const withEnv = (env: Record<string, string>) =>
        Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnvRecord(env))
      const missing = sinkFailure(
        yield* Effect.exit(definition.make(config, { name: "s" }).pipe(withEnv({})))
      )
      expect((missing as Sink.SinkFatal).reason).toBe(
        "no Slack token: set `token` in the sink's config or SLACK_BOT_TOKEN"
      )
      const sink = yield* definition
        .make(config, { name: "s" })
        .pipe(withEnv({ SLACK_BOT_TOKEN: standIn.token }))
      expect(yield* sink.deliver(numbered([examples["user.created"]]))).toEqual([Sink.delivered])
    })
  )

  it.live("sends one digest for a channel's backlog past the threshold", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make({ channels })
      const sink = yield* makeSink(standIn, {
        digest: { threshold: 5 },
        routes: [{ events: ["dsync.*"], channel: "#dsync" }]
      })
      const events = numbered([
        ...Array.from({ length: 12 }, () => examples["user.created"] as Event.Any),
        examples["dsync.user.created"],
        examples["dsync.user.deleted"]
      ])
      const outcomes = yield* sink.deliver(events)
      expect(outcomes.every((o) => o._tag === "Delivered")).toBe(true)
      const byChannel = standIn.messages().map((m) => m.channelName)
      expect(byChannel.sort()).toEqual(["dsync", "dsync", "general"])
      const digest = standIn.messages().find((m) => m.channelName === "general")!
      expect(digest.text).toContain("12 WorkOS events")
    })
  )

  it.live("sends a refused digest's events one by one", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make({ channels })
      const sink = yield* makeSink(standIn, { digest: { threshold: 2 } })
      standIn.fault({ error: "msg_too_long" })
      const events = numbered(
        Array.from({ length: 4 }, () => examples["user.created"] as Event.Any)
      )
      expect(yield* sink.deliver(events)).toEqual(events.map(() => Sink.delivered))
      expect(idsByChannel(standIn)).toEqual({ general: events.map((e) => e.id) })
    })
  )

  // Pacing runs on Effect's clock: the test clock moves it, the HTTP round trips are real.
  it.effect("paces each channel to its rate, with a burst", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make({ channels })
      const sink = yield* makeSink(standIn, {
        pacing: { perSecond: 10, burst: 2 },
        routes: [{ events: ["user.*"], channel: "#security" }]
      })
      const events = numbered([
        ...Array.from({ length: 6 }, () => examples["organization.created"] as Event.Any),
        examples["user.created"]
      ])
      const sent = (channel: string) =>
        standIn.messages().filter((m) => m.channelName === channel).length
      const delivering = yield* Effect.forkChild(sink.deliver(events))
      // The burst of two goes at once, and the other channel is not held back by this one.
      yield* realWaitUntil(() => sent("general") === 2 && sent("security") === 1)
      yield* realSleep(200)
      expect(sent("general")).toBe(2)
      // Then one each 100 ms of (test) time.
      for (let n = 3; n <= 6; n++) {
        yield* TestClock.adjust("100 millis")
        yield* realWaitUntil(() => sent("general") === n)
        yield* realSleep(50)
        expect(sent("general")).toBe(n)
      }
      const outcomes = yield* Fiber.join(delivering)
      expect(outcomes.every((o) => o._tag === "Delivered")).toBe(true)
    })
  )

  it.live(
    "is raw: events whose payload breaks the spec are posted as the generic message; a typed format is not asked about them",
    () =>
      Effect.gen(function* () {
        expect(definition.raw).toBe(true)
        const standIn = yield* SlackStandIn.make({ channels })
        const asked: Array<string> = []
        const custom = SlackSink.define({
          format: (event) => {
            asked.push(event.id)
            return undefined
          }
        })
        expect(custom.raw).toBe(true)
        const sink = yield* custom.make(
          Schema.decodeUnknownSync(custom.config)({
            token: standIn.token,
            channel: "#general",
            slackApiUrl: standIn.url,
            pacing: "off"
          }),
          { name: "custom" }
        )
        const drifted = WorkOSStandIn.driftCases.map(({ drift, type }, i) => {
          const decoded = Event.decode({
            ...WorkOSStandIn.driftedEvent(drift, type),
            id: `drift_${String(i).padStart(5, "0")}`
          })
          if (Result.isSuccess(decoded)) throw new Error(`${type} decoded`)
          return Sink.mismatched(decoded.failure)!
        })
        const plain = numbered([examples["user.created"], examples["dsync.user.created"]])
        const result = yield* deliverAll(sink, [plain[0]!, ...drifted, plain[1]!])
        expect(result.outcomes.every((o) => o._tag === "Delivered")).toBe(true)
        expect(asked).toEqual(plain.map((e) => e.id))
        const messages = standIn.messages()
        expect(messages).toHaveLength(drifted.length + 2)
        for (const [i, event] of drifted.entries()) {
          const message = messages[i + 1]!
          const mismatch = Sink.mismatchOf(event)!
          expect(message.text).toContain(
            `WorkOS sent \`${event.event}\` with a payload that does not match the spec`
          )
          expect(message.text).toContain(`\`${mismatch.path}\``)
          expect(JSON.stringify(message.blocks)).toContain(event.id)
        }
        expect(messages[0]!.text).not.toContain("does not match the spec")
      })
  )

  it.live("lets library users override the header and summary with a typed function", () =>
    Effect.gen(function* () {
      const standIn = yield* SlackStandIn.make({ channels })
      const custom = SlackSink.define({
        format: (event) =>
          event.event === "user.created"
            ? { header: "Welcome!", summary: ["New user ", { value: "<!channel>", style: "bold" }] }
            : undefined
      })
      const sink = yield* custom.make(
        Schema.decodeUnknownSync(custom.config)({
          token: standIn.token,
          channel: "#general",
          slackApiUrl: standIn.url
        }),
        { name: "custom" }
      )
      yield* sink.deliver(numbered([examples["user.created"]]))
      const [message] = standIn.messages()
      expect(message!.blocks![0]).toMatchObject({ text: { text: "Welcome!" } })
      expect(message!.blocks![1]).toMatchObject({ text: { text: "New user *&lt;!channel&gt;*" } })
      expect(message!.mentions).toEqual([])
    })
  )
})
