/**
 * Throughput of the eventbridge sink through the EventBridge stand-in, with the real
 * AWS SDK client, against a naive baseline measured in the same run: one PutEvents
 * call per event (what much public code does).
 *
 *   pnpm bench        (node --conditions=@workos-relay/source bench/put.ts)
 */
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge"
import type { Event } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import { EventBridgeStandIn } from "@workos-relay/testing"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { definition, Entries, Sink } from "../src/index.ts"

const count = Number(process.env.EVENTS ?? 3_000)
const runs = 3
const exampleList = Object.values(examples) as ReadonlyArray<Event.Any>
const makeEvents = (n: number, padding = 0): Array<Event.Any> =>
  Array.from({ length: n }, (_, i) => {
    const example = exampleList[i % exampleList.length]!
    const data = padding === 0 ? example.data : { ...example.data, padding: "x".repeat(padding) }
    return { ...example, id: `event_${i}`, data } as Event.Any
  })

const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" }

interface Row {
  readonly name: string
  readonly events: number
  readonly requests: number
  readonly seconds: number
  readonly baseline?: string
}

/** Delivers every event through the sink, batch by batch, as the pipeline would. */
const throughSink = (name: string, events: ReadonlyArray<Event.Any>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make()
      const config = Schema.decodeUnknownSync(definition.config)({
        region: "us-east-1",
        eventBus: "bench",
        endpoint: standIn.url,
        credentials
      })
      const sink = yield* definition.make(config, { name: "bench" })
      const started = performance.now()
      for (let i = 0; i < events.length; i += sink.batch.maxEvents) {
        const outcomes = yield* sink.deliver(events.slice(i, i + sink.batch.maxEvents))
        if (outcomes.some((o) => o._tag !== "Delivered"))
          throw new Error("an event was not delivered")
      }
      const seconds = (performance.now() - started) / 1000
      if (standIn.events.length !== events.length) throw new Error("events went missing")
      return {
        name,
        events: events.length,
        requests: standIn.requestCount(),
        seconds
      } satisfies Row
    })
  )

/** The naive way: one PutEvents call per event, one after another. */
const naive = (name: string, events: ReadonlyArray<Event.Any>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const standIn = yield* EventBridgeStandIn.make()
      const client = new EventBridgeClient({
        region: "us-east-1",
        endpoint: standIn.url,
        credentials,
        maxAttempts: 1
      })
      const encode = Entries.encoder(
        Schema.decodeUnknownSync(definition.config)({ eventBus: "bench" })
      )
      const started = performance.now()
      yield* Effect.promise(async () => {
        for (const event of events) {
          const encoded = encode(event)
          if (encoded._tag === "Failure") throw new Error(encoded.failure)
          await client.send(new PutEventsCommand({ Entries: [{ ...encoded.success.entry }] }))
        }
      })
      const seconds = (performance.now() - started) / 1000
      client.destroy()
      return {
        name,
        events: events.length,
        requests: standIn.requestCount(),
        seconds
      } satisfies Row
    })
  )

const program = Effect.gen(function* () {
  const small = makeEvents(count)
  const large = makeEvents(Math.ceil(count / 10), 300_000)
  // Warm up the SDK and the JIT so neither side pays first-call costs.
  yield* throughSink("warm-up", makeEvents(200))
  yield* naive("warm-up", makeEvents(200))

  // The best of a few runs of each, taken in turn, so a busy machine skews both sides alike.
  const best = (rows: ReadonlyArray<Row>): Row =>
    rows.reduce((a, b) => (b.seconds < a.seconds ? b : a))
  const measure = <E>(cases: ReadonlyArray<Effect.Effect<Row, E>>) =>
    Effect.gen(function* () {
      const results: Array<Array<Row>> = cases.map(() => [])
      for (let run = 0; run < runs; run++) {
        for (const [i, measureOnce] of cases.entries()) results[i]!.push(yield* measureOnce)
      }
      return results.map(best)
    })
  const [smallBaseline, smallSink, largeBaseline, largeSink] = (yield* measure([
    naive("naive, small events (1 call per event)", small),
    throughSink("sink, small events", small),
    naive("naive, ~300 KB events (1 call per event)", large),
    throughSink("sink, ~300 KB events", large)
  ])) as [Row, Row, Row, Row]

  const rows: Array<Row & { ratio: string }> = [
    { ...smallBaseline, ratio: "1.00x" },
    { ...smallSink, ratio: `${(smallBaseline.seconds / smallSink.seconds).toFixed(2)}x` },
    { ...largeBaseline, ratio: "1.00x" },
    { ...largeSink, ratio: `${(largeBaseline.seconds / largeSink.seconds).toFixed(2)}x` }
  ]
  const averageBytes = Math.round(
    small.reduce((sum, event) => sum + Buffer.byteLength(JSON.stringify(event)), 0) / small.length
  )
  console.log(
    `Node ${process.version}; ${count} small events of ${averageBytes} B on average and ${large.length} of ~300 KB;` +
      ` sink batches of ${Sink.defaultBatch.maxEvents} events; EventBridge stand-in on 127.0.0.1, requests one after another; best of ${runs} runs`
  )
  console.table(
    rows.map((row) => ({
      case: row.name,
      events: row.events,
      requests: row.requests,
      "requests/event": Number((row.requests / row.events).toFixed(3)),
      "events/s": Math.round(row.events / row.seconds),
      "speed vs naive": row.ratio
    }))
  )
})

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
