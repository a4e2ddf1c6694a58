import { describe, expect, it } from "@effect/vitest"
import { Event, Sink } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import { EventBridgeStandIn, WorkOSStandIn } from "@workos-relay/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { definition } from "../src/index.ts"
import { deliverAll, makeEvents } from "./Driver.ts"

const allExamples = Object.values(examples) as ReadonlyArray<Event.Any>
const idOf = (stored: EventBridgeStandIn.StoredEvent): string => JSON.parse(stored.detail).id

/** The sink with the real AWS SDK client pointed at the stand-in, with dummy credentials. */
const makeSink = (standIn: EventBridgeStandIn.StandIn, options: Record<string, unknown> = {}) =>
  definition.make(
    Schema.decodeUnknownSync(definition.config)({
      region: "us-east-1",
      eventBus: "workos-events",
      endpoint: standIn.url,
      credentials: {
        accessKeyId: "AKIDEXAMPLE",
        secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
      },
      ...options
    }),
    { name: "aws" }
  )

/** Sets (or, with undefined, removes) environment variables for the rest of the test's scope. */
const withEnv = (vars: Record<string, string | undefined>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const saved = Object.fromEntries(Object.keys(vars).map((key) => [key, process.env[key]]))
      setEnv(vars)
      return saved
    }),
    (saved) => Effect.sync(() => setEnv(saved))
  )
const setEnv = (vars: Record<string, string | undefined>) => {
  for (const [key, value] of Object.entries(vars)) {
    if (value === undefined) delete process.env[key]
    else process.env[key] = value
  }
}

/** No instance metadata and none of this machine's AWS profile files: only what a test sets. */
const isolatedAws = {
  AWS_PROFILE: undefined,
  AWS_EC2_METADATA_DISABLED: "true",
  AWS_CONFIG_FILE: "/nonexistent/aws/config",
  AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/aws/credentials"
}

describe("eventbridge sink", () => {
  it.live("delivers 10k events once each, in order, 10 per request", () =>
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make()
      const sink = yield* makeSink(standIn)
      const events = makeEvents(allExamples, 10_000)
      const report = yield* deliverAll(sink, events)

      expect(standIn.events.map(idOf)).toEqual(events.map((e) => e.id))
      expect([...report.outcomes.values()].every((o) => o._tag === "Delivered")).toBe(true)
      expect(report.deliveries).toBe(100)
      expect(standIn.requestCount()).toBe(1_000)
      expect(standIn.entriesPerRequest.every((n) => n === 10)).toBe(true)

      // Each entry is the event as WorkOS sent it, typed and timed by it.
      const first = standIn.events[0]!
      expect(JSON.parse(first.detail)).toEqual(events[0])
      expect(first.source).toBe("workos")
      expect(first.detailType).toBe(events[0]!.event)
      expect(first.eventBusName).toBe("workos-events")
      expect(first.time).toBe(Date.parse(events[0]!.created_at) / 1000)
    })
  )

  it.live("with 30% of entries failing at random, every event arrives once, in near order", () =>
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make({ seed: 7 })
      standIn.setFaults({ internalFailureRatio: 0.3 })
      const sink = yield* makeSink(standIn)
      const events = makeEvents(allExamples, 3_000)
      const report = yield* deliverAll(sink, events)

      const arrived = standIn.events.map(idOf)
      expect(arrived.length).toBe(events.length)
      expect(new Set(arrived)).toEqual(new Set(events.map((e) => e.id)))
      expect([...report.outcomes.values()].every((o) => o._tag === "Delivered")).toBe(true)
      expect(report.retries).toBeGreaterThan(events.length * 0.3)
      // Order: when an event arrives, every earlier event that has not arrived yet was
      // in the same request (the sink sends nothing past a request with retries), so
      // at most 9 of them.
      const position = new Map(events.map((e, i) => [e.id, i]))
      const hasArrived = new Array<boolean>(events.length).fill(false)
      let worst = 0
      for (const id of arrived) {
        const at = position.get(id)!
        let missing = 0
        for (let p = 0; p < at; p++) if (!hasArrived[p]) missing++
        worst = Math.max(worst, missing)
        hasArrived[at] = true
      }
      expect(worst).toBeGreaterThan(0)
      expect(worst).toBeLessThanOrEqual(9)
    })
  )

  it.live(
    "is raw: events whose payload breaks the spec go on the bus as WorkOS sent them, the mismatch nowhere",
    () =>
      Effect.gen(function* () {
        expect(definition.raw).toBe(true)
        const standIn = yield* EventBridgeStandIn.make()
        const sink = yield* makeSink(standIn)
        const drifted = WorkOSStandIn.driftCases.map(({ drift, type }, i) => {
          const text = JSON.stringify({
            ...WorkOSStandIn.driftedEvent(drift, type),
            id: `event_drift_${i}`
          })
          const decoded = Event.decode(JSON.parse(text))
          if (Result.isSuccess(decoded)) throw new Error(`${type} decoded`)
          return { text, event: Sink.mismatched(decoded.failure)! }
        })
        const events = [allExamples[0]!, ...drifted.map((d) => d.event), allExamples[1]!]
        const report = yield* deliverAll(sink, events)
        expect([...report.outcomes.values()].every((o) => o._tag === "Delivered")).toBe(true)
        expect(standIn.events.map((e) => e.detail)).toEqual([
          JSON.stringify(allExamples[0]),
          ...drifted.map((d) => d.text),
          JSON.stringify(allExamples[1])
        ])
        expect(standIn.events.slice(1, -1).map((e) => e.detailType)).toEqual(
          WorkOSStandIn.driftCases.map((c) => c.type)
        )
      })
  )

  it.live("rejects an event over 1 MiB with the reason and delivers the rest", () =>
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make()
      const sink = yield* makeSink(standIn)
      const [before, huge, after] = makeEvents(allExamples, 3)
      const oversized = {
        ...huge!,
        data: { ...huge!.data, padding: "x".repeat(1_048_576) }
      } as Event.Any
      const outcomes = yield* sink.deliver([before!, oversized, after!])

      expect(outcomes[0]).toEqual({ _tag: "Delivered" })
      expect(outcomes[1]?._tag).toBe("Rejected")
      expect(outcomes[1]).toMatchObject({
        reason: expect.stringMatching(/event_000001 .* bytes .* at most 1048576 bytes/)
      })
      expect(outcomes[2]).toEqual({ _tag: "Delivered" })
      expect(standIn.events.map(idOf)).toEqual([before!.id, after!.id])
    })
  )

  it.live("rejects MalformedDetail and other final entry errors with AWS's message", () =>
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make()
      const events = makeEvents(allExamples, 12)
      standIn.setFaults({
        failEntry: (entry) =>
          String(entry.Detail).includes(events[3]!.id)
            ? { code: "MalformedDetail", message: "Detail is malformed." }
            : String(entry.Detail).includes(events[11]!.id)
              ? {
                  code: "AccessDeniedException",
                  message: "User is not authorized to perform: events:PutEvents"
                }
              : undefined
      })
      const sink = yield* makeSink(standIn)
      const outcomes = yield* sink.deliver(events)

      expect(outcomes[3]).toEqual({
        _tag: "Rejected",
        reason: "EventBridge MalformedDetail: Detail is malformed."
      })
      expect(outcomes[11]).toEqual({
        _tag: "Rejected",
        reason:
          "EventBridge AccessDeniedException: User is not authorized to perform: events:PutEvents"
      })
      expect(outcomes.filter((o) => o._tag === "Delivered")).toHaveLength(10)
      expect(standIn.events.map(idOf)).toEqual(
        events.filter((_, i) => i !== 3 && i !== 11).map((e) => e.id)
      )
    })
  )

  it.live("whole-request throttling and 5xx fail the batch with SinkUnavailable", () =>
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make()
      const sink = yield* makeSink(standIn)
      const events = makeEvents(allExamples, 5)

      standIn.setFaults({ throttleRequests: 1 })
      const throttled = yield* Effect.flip(sink.deliver(events))
      expect(throttled._tag).toBe("SinkUnavailable")
      expect(throttled.message).toMatch(/ThrottlingException \(HTTP 400\): Rate exceeded/)

      standIn.setFaults({ failRequests: 1 })
      const failed = yield* Effect.flip(sink.deliver(events))
      expect(failed._tag).toBe("SinkUnavailable")
      expect(failed.message).toMatch(/HTTP 500/)

      expect(standIn.events).toHaveLength(0)
      const outcomes = yield* sink.deliver(events)
      expect(outcomes.every((o) => o._tag === "Delivered")).toBe(true)
      expect(standIn.events.map(idOf)).toEqual(events.map((e) => e.id))
    })
  )

  it.live("a later request throttled: what was sent is delivered, the rest retried", () =>
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make()
      const sink = yield* makeSink(standIn)
      const events = makeEvents(allExamples, 25)
      standIn.setFaults({ afterRequests: 1, throttleRequests: Number.POSITIVE_INFINITY })
      const outcomes = yield* sink.deliver(events)

      expect(outcomes.slice(0, 10).every((o) => o._tag === "Delivered")).toBe(true)
      expect(outcomes.slice(10).every((o) => o._tag === "Retry")).toBe(true)
      expect(outcomes[10]).toMatchObject({ reason: expect.stringMatching(/ThrottlingException/) })
      expect(standIn.events.map(idOf)).toEqual(events.slice(0, 10).map((e) => e.id))
      expect(standIn.requestCount()).toBe(2)
    })
  )

  it.live("retries entries AWS throttled one by one, and nothing after their request", () =>
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make()
      const events = makeEvents(allExamples, 25)
      standIn.setFaults({
        failEntry: (entry) =>
          String(entry.Detail).includes(events[4]!.id)
            ? { code: "ThrottlingException", message: "Rate exceeded" }
            : undefined
      })
      const sink = yield* makeSink(standIn)
      const outcomes = yield* sink.deliver(events)

      expect(outcomes[4]).toEqual({
        _tag: "Retry",
        reason: "EventBridge ThrottlingException: Rate exceeded"
      })
      expect(outcomes.slice(0, 10).filter((o) => o._tag === "Delivered")).toHaveLength(9)
      expect(outcomes.slice(10).every((o) => o._tag === "Retry")).toBe(true)
      expect(standIn.requestCount()).toBe(1)
    })
  )

  it.live("a request AWS refuses as a whole is resent entry by entry to find what to reject", () =>
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make()
      standIn.setFaults({
        rejectRequests: {
          status: 400,
          code: "ValidationException",
          message: "1 validation error detected"
        }
      })
      const sink = yield* makeSink(standIn)
      const outcomes = yield* sink.deliver(makeEvents(allExamples, 3))
      expect(outcomes).toEqual(
        new Array(3).fill({
          _tag: "Rejected",
          reason: "EventBridge ValidationException (HTTP 400): 1 validation error detected"
        })
      )
      expect(standIn.requestCount()).toBe(4)
    })
  )

  it.live("only the entry at fault in a refused request is rejected; the others go through", () =>
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make()
      const events = makeEvents(allExamples, 3)
      standIn.setFaults({
        rejectRequest: (entries) =>
          entries.some((entry) => String(entry.Detail).includes(events[1]!.id))
            ? { status: 400, code: "ValidationException", message: "entry 2 is not acceptable" }
            : undefined
      })
      const sink = yield* makeSink(standIn)
      const outcomes = yield* sink.deliver(events)
      expect(outcomes).toEqual([
        { _tag: "Delivered" },
        {
          _tag: "Rejected",
          reason: "EventBridge ValidationException (HTTP 400): entry 2 is not acceptable"
        },
        { _tag: "Delivered" }
      ])
      expect(standIn.events.map(idOf)).toEqual([events[0]!.id, events[2]!.id])
      expect(standIn.requestCount()).toBe(4)
    })
  )

  it.live("check: signs a request with no entries, puts nothing, and says what is wrong", () =>
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make()
      const sink = yield* makeSink(standIn)
      yield* sink.check!
      expect(standIn.requestCount()).toBe(1)
      expect(standIn.accessKeyIds).toEqual(["AKIDEXAMPLE"])
      expect(standIn.events).toEqual([])

      // Credentials AWS refuses stop the sink; AWS unavailable is worth retrying.
      standIn.setFaults({
        rejectRequests: {
          status: 400,
          code: "UnrecognizedClientException",
          message: "The security token included in the request is invalid."
        }
      })
      const refused = yield* Effect.flip(sink.check!)
      expect(refused._tag).toBe("SinkFatal")
      expect(refused.message).toBe(
        'eventbridge sink "aws" (bus workos-events, us-east-1): UnrecognizedClientException (HTTP 400): The security token included in the request is invalid.'
      )
      standIn.setFaults({ failRequests: 1 })
      const unavailable = yield* Effect.flip(sink.check!)
      expect(unavailable._tag).toBe("SinkUnavailable")
      expect(unavailable.message).toContain("(HTTP 500)")
    })
  )

  it.live("takes credentials from the standard AWS chain when none are configured", () =>
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make()
      const config = () =>
        Schema.decodeUnknownSync(definition.config)({
          region: "us-east-1",
          eventBus: "default",
          endpoint: standIn.url
        })
      yield* withEnv({
        ...isolatedAws,
        AWS_ACCESS_KEY_ID: "AKIDFROMENVIRONMENT",
        AWS_SECRET_ACCESS_KEY: "secret-from-environment",
        AWS_SESSION_TOKEN: undefined
      })
      const sink = yield* definition.make(config(), { name: "aws" })
      expect(yield* sink.deliver(makeEvents(allExamples, 1))).toEqual([{ _tag: "Delivered" }])
      expect(standIn.accessKeyIds).toEqual(["AKIDFROMENVIRONMENT"])

      // No credentials anywhere: a person must act, so the sink stops.
      setEnv({ AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined })
      const lost = yield* definition.make(config(), { name: "aws" })
      const error = yield* Effect.flip(lost.deliver(makeEvents(allExamples, 1)))
      expect(error._tag).toBe("SinkFatal")
      expect(error.message).toMatch(/eventbridge sink "aws".*CredentialsProviderError/)
      expect(standIn.events).toHaveLength(1)
    })
  )

  it.live("refused credentials stop the sink with SinkFatal", () =>
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make()
      standIn.setFaults({
        rejectRequests: {
          status: 400,
          code: "UnrecognizedClientException",
          message: "The security token included in the request is invalid."
        }
      })
      const sink = yield* makeSink(standIn)
      const error = yield* Effect.flip(sink.deliver(makeEvents(allExamples, 3)))
      expect(error._tag).toBe("SinkFatal")
      expect(error.message).toMatch(
        /eventbridge sink "aws".*UnrecognizedClientException.*security token/
      )
    })
  )

  it.live("a request slower than the timeout fails with SinkUnavailable", () =>
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make()
      standIn.setFaults({ delayMillis: 15_000 })
      const sink = yield* makeSink(standIn, { requestTimeout: 300 })
      const started = Date.now()
      const error = yield* Effect.flip(sink.deliver(makeEvents(allExamples, 2)))
      expect(error._tag).toBe("SinkUnavailable")
      expect(error.message).toMatch(/TimeoutError: a request has exceeded the configured 300 ms/)
      expect(error.message).not.toMatch(/@smithy/)
      // Given up on, not waited out: the stand-in would answer only after 15 s.
      expect(Date.now() - started).toBeLessThan(10_000)
    })
  )

  it.live("sends only data, under a detail-type template, with resources, when configured", () =>
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make()
      const sink = yield* makeSink(standIn, {
        source: "com.example.workos",
        detailType: "WorkOS {{event}}",
        detail: "data",
        resources: ["arn:aws:iam::123456789012:role/example"]
      })
      const [event] = makeEvents(allExamples, 1)
      const outcomes = yield* sink.deliver([event!])
      expect(outcomes).toEqual([{ _tag: "Delivered" }])
      expect(standIn.events[0]).toMatchObject({
        source: "com.example.workos",
        detailType: `WorkOS ${event!.event}`,
        resources: ["arn:aws:iam::123456789012:role/example"]
      })
      expect(JSON.parse(standIn.events[0]!.detail)).toEqual(event!.data)
    })
  )

  it.live("fails to start with SinkFatal when no region can be found", () =>
    Effect.gen(function* () {
      yield* withEnv({ ...isolatedAws, AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined })
      const exit = yield* Effect.exit(
        Effect.scoped(
          definition.make(Schema.decodeUnknownSync(definition.config)({ eventBus: "default" }), {
            name: "aws"
          })
        )
      )
      expect(Exit.isFailure(exit)).toBe(true)
      expect(String(Exit.isFailure(exit) ? exit.cause : "")).toMatch(/no AWS region/)
    })
  )

  it.live("fails to start saying the region is not valid when AWS_REGION is malformed", () =>
    Effect.gen(function* () {
      yield* withEnv({ ...isolatedAws, AWS_REGION: "not a region", AWS_DEFAULT_REGION: undefined })
      const exit = yield* Effect.exit(
        Effect.scoped(
          definition.make(Schema.decodeUnknownSync(definition.config)({ eventBus: "default" }), {
            name: "aws"
          })
        )
      )
      const cause = String(Exit.isFailure(exit) ? exit.cause : "")
      expect(cause).toMatch(/the AWS region is not valid: Region not accepted/)
      expect(cause).not.toMatch(/no AWS region/)
    })
  )
})
