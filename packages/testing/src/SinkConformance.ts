/**
 * A conformance suite every sink must pass, shipped or custom. One call registers
 * the vitest tests:
 *
 * ```ts
 * import * as SinkConformance from "@workos-relay/testing/SinkConformance"
 * import { definition } from "../src/index.ts"
 *
 * SinkConformance.suite({
 *   definition,
 *   config: () => Effect.succeed({ url: "http://127.0.0.1:8080/hooks", secret: "s" }),
 *   badConfigs: [{ config: { url: "ftp://x", secret: "s" }, path: "url" }]
 * })
 * ```
 *
 * It checks what the pipeline relies on: sane batch settings; one outcome per event,
 * of a known kind; every event delivered or rejected once retries are done, without
 * duplicates at the destination when the suite can see it; a delivery interrupted
 * midway leaves the sink usable; a config schema that rejects bad input naming the path.
 */
import { describe, expect, it } from "@effect/vitest"
import { type Event, EventPattern, Sink } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import type * as Scope from "effect/Scope"

export interface Options {
  readonly definition: Sink.Definition
  /**
   * A valid config entry, as a config file would hold it (without the runner's keys).
   * Run in the test's scope: start a stand-in there and return a config that points at it.
   */
  readonly config: () => Effect.Effect<unknown, unknown, Scope.Scope>
  /** Config entries the schema must reject, each with the path its error must name (`"channel"`, `"routes[0].pattern"`). */
  readonly badConfigs: ReadonlyArray<{ readonly config: unknown; readonly path: string }>
  /**
   * The ids of the events the destination holds now, in arrival order, when the suite
   * can see them (a stand-in's record); enables the no-duplicates check.
   */
  readonly received?: () => Effect.Effect<ReadonlyArray<string>>
  /** How many times to re-deliver events the sink asks to retry (default 20). */
  readonly maxAttempts?: number
  /**
   * `deliver` runs to its end without yielding (a synchronous store on this thread):
   * no interrupt can land in it, and the interrupt test checks none did.
   */
  readonly synchronous?: boolean
}

/** Events of every type the sink accepts, with distinct ids. */
export const eventsFor = (definition: Sink.Definition, count: number): ReadonlyArray<Event.Any> => {
  const accepts = definition.events ? EventPattern.matcher(definition.events) : () => true
  const pool = (Object.values(examples) as ReadonlyArray<Event.Any>).filter((event) =>
    accepts(event)
  )
  return Array.from({ length: count }, (_, i) => ({
    ...pool[i % pool.length]!,
    id: `event_conformance_${String(i).padStart(8, "0")}`
  }))
}

const makeSink = (options: Options) =>
  Effect.gen(function* () {
    const raw = yield* options.config()
    const config = yield* Schema.decodeUnknownEffect(options.definition.config)(raw)
    return yield* options.definition.make(config, { name: "conformance" })
  })

const isOutcome = (outcome: unknown): outcome is Sink.Outcome => {
  const o = outcome as Sink.Outcome | undefined
  if (o?._tag === "Delivered") return true
  return (
    (o?._tag === "Retry" || o?._tag === "Rejected") &&
    typeof o.reason === "string" &&
    o.reason.length > 0
  )
}

/** Delivers until every event is delivered or rejected, as the pipeline would (without its backoff). */
const deliverAll = (sink: Sink.Sink, events: ReadonlyArray<Event.Any>, maxAttempts: number) =>
  Effect.gen(function* () {
    const final = new Map<string, Sink.Outcome>()
    let pending = events
    for (let attempt = 0; attempt < maxAttempts && pending.length > 0; attempt++) {
      const outcomes = yield* sink
        .deliver(pending)
        .pipe(
          Effect.catchTag("SinkUnavailable", () =>
            Effect.succeed(pending.map(() => Sink.retry("unavailable")))
          )
        )
      expect(outcomes).toHaveLength(pending.length)
      const waits = outcomes.flatMap((o) =>
        o._tag === "Retry" && o.after ? [Duration.toMillis(o.after)] : []
      )
      pending.forEach((event, i) => {
        if (outcomes[i]!._tag !== "Retry") final.set(event.id, outcomes[i]!)
      })
      pending = pending.filter((_, i) => outcomes[i]!._tag === "Retry")
      // Honour the destination's Retry-After, within reason for a test.
      if (pending.length > 0)
        yield* Effect.sleep(Duration.millis(Math.min(2_000, Math.max(10, ...waits))))
    }
    return { final, pending }
  })

/** Registers the conformance tests for one sink definition. */
export const suite = (options: Options): void => {
  const maxAttempts = options.maxAttempts ?? 20

  describe(`sink conformance: ${options.definition.type}`, () => {
    it.live("has sane batch settings", () =>
      Effect.gen(function* () {
        const sink = yield* makeSink(options)
        expect(Number.isSafeInteger(sink.batch.maxEvents) && sink.batch.maxEvents >= 1).toBe(true)
        const maxWait = Duration.fromInput(sink.batch.maxWait)
        expect(maxWait._tag).toBe("Some")
        if (sink.batch.maxBytes !== undefined) expect(sink.batch.maxBytes).toBeGreaterThan(0)
      }).pipe(Effect.scoped)
    )

    it.live("reports one known outcome per event, for a full batch", () =>
      Effect.gen(function* () {
        const sink = yield* makeSink(options)
        const batch = eventsFor(options.definition, Math.min(sink.batch.maxEvents, 50))
        const outcomes = yield* sink.deliver(batch)
        expect(outcomes).toHaveLength(batch.length)
        for (const outcome of outcomes)
          expect(isOutcome(outcome), JSON.stringify(outcome)).toBe(true)
      }).pipe(Effect.scoped)
    )

    it.live("delivers every event, each once, when retries are done", () =>
      Effect.gen(function* () {
        const sink = yield* makeSink(options)
        const events = eventsFor(options.definition, Math.min(sink.batch.maxEvents, 25) * 3)
        const before = options.received ? yield* options.received() : []
        for (let i = 0; i < events.length; i += sink.batch.maxEvents) {
          const { pending } = yield* deliverAll(
            sink,
            events.slice(i, i + sink.batch.maxEvents),
            maxAttempts
          )
          expect(pending, "events still asking for a retry").toEqual([])
        }
        if (options.received) {
          const arrived = (yield* options.received()).slice(before.length)
          const ids = events.map((e) => e.id)
          expect(new Set(arrived).size, "no event arrives twice").toBe(arrived.length)
          expect([...arrived].sort()).toEqual([...ids].sort())
        }
      }).pipe(Effect.scoped)
    )

    it.live("stays usable after deliveries interrupted before they finished", () =>
      Effect.gen(function* () {
        const sink = yield* makeSink(options)
        const events = eventsFor(options.definition, Math.min(sink.batch.maxEvents, 20))
        // Interrupts at several moments, from before the first request to mid-way.
        let interrupted = 0
        for (const delay of [0, 1, 2, 5, 10, 20]) {
          // Interrupted only once it runs: a fiber stopped before it starts (a timer
          // first on a busy machine) tells nothing about the delivery.
          const started = yield* Deferred.make<void>()
          const fiber = yield* Effect.forkChild(
            Deferred.succeed(started, undefined).pipe(Effect.andThen(sink.deliver(events)))
          )
          yield* Deferred.await(started)
          yield* Effect.sleep(Duration.millis(delay))
          yield* Fiber.interrupt(fiber)
          const exit = yield* Fiber.await(fiber)
          if (Exit.hasInterrupts(exit)) interrupted++
        }
        if (options.synchronous === true)
          expect(interrupted, "a synchronous delivery is never interrupted").toBe(0)
        else
          expect(
            interrupted,
            "deliveries the interrupt caught before they finished"
          ).toBeGreaterThan(0)
        // At least once: the pipeline re-delivers an interrupted batch whole.
        const { pending, final } = yield* deliverAll(sink, events, maxAttempts)
        expect(pending).toEqual([])
        expect(final.size).toBe(events.length)
      }).pipe(Effect.scoped)
    )

    it.each(options.badConfigs.map((bad) => [bad.path, bad.config] as const))(
      "rejects a bad config, naming %s",
      (path, config) => {
        const exit = Schema.decodeUnknownExit(options.definition.config)(config, {
          onExcessProperty: "error"
        })
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          const error = exit.cause.reasons.find((r) => r._tag === "Fail")
            ?.error as Schema.SchemaError
          const paths = SchemaIssue.makeFormatterStandardSchemaV1()(error.issue).issues.map(
            (issue) =>
              (issue.path ?? [])
                .map((segment) => (typeof segment === "object" ? segment.key : segment))
                .map((key, i) =>
                  typeof key === "number" ? `[${key}]` : `${i === 0 ? "" : "."}${String(key)}`
                )
                .join("")
          )
          expect(paths).toContain(path)
        }
      }
    )
  })
}
