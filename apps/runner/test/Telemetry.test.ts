/**
 * OpenTelemetry over OTLP/HTTP: a runner relaying events from the WorkOS stand-in
 * exports its spans, metrics and logs to a receiver in this test (a plain HTTP server
 * on 127.0.0.1), as JSON or protobuf, as configured.
 */
import * as Http from "node:http"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Console from "effect/Console"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Config from "../src/Config.ts"
import { logLayer, Metrics } from "../src/Observability.ts"
import * as Runner from "../src/Runner.ts"
import { fixtures, recorded, tempDir, waitUntil } from "./helpers.ts"

interface Received {
  readonly path: string
  readonly contentType: string
  readonly body: Buffer
}

/** An OTLP/HTTP receiver: keeps every request, answers 200 `{}`. */
const receiver = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ url: string; received: Array<Received>; server: Http.Server }>((resolve) => {
        const received: Array<Received> = []
        const server = Http.createServer((request, response) => {
          const chunks: Array<Buffer> = []
          request.on("data", (chunk: Buffer) => chunks.push(chunk))
          request.on("end", () => {
            received.push({
              path: request.url ?? "",
              contentType: request.headers["content-type"] ?? "",
              body: Buffer.concat(chunks)
            })
            response.writeHead(200, { "content-type": "application/json" }).end("{}")
          })
        })
        server.listen(0, "127.0.0.1", () => {
          const { port } = server.address() as { port: number }
          resolve({ url: `http://127.0.0.1:${port}`, received, server })
        })
      })
  ),
  ({ server }) => Effect.promise(() => new Promise((resolve) => server.close(resolve)))
)

const standIn = (events: number) =>
  Effect.acquireRelease(
    Effect.promise(() => WorkOSStandIn.start({ events })),
    (s) => Effect.promise(() => s.close())
  )

const configFor = (
  server: WorkOSStandIn.StandIn,
  dir: string,
  otlp: Record<string, unknown>,
  busyType: string
) =>
  Config.decode(
    {
      source: {
        type: "workos",
        apiKey: server.apiKey,
        baseUrl: server.url,
        start: "earliest",
        pollInterval: "50ms"
      },
      state: { sqlite: Path.join(dir, "state.db") },
      shutdownTimeout: "2s",
      telemetry: { otlp },
      sinks: {
        archive: { module: "./recording-sink.mjs", path: Path.join(dir, "archive.log") },
        // Busy with one type: retried, logged, then dead-lettered.
        chat: {
          module: "./recording-sink.mjs",
          path: Path.join(dir, "chat.log"),
          failTypes: [busyType],
          retry: { initialDelay: "5ms", maxDelay: "10ms", maxDuration: "50ms" }
        }
      }
    },
    { file: "test", baseDir: fixtures, env: {} }
  )

/** Runs a relay until both sinks are done with every event, then stops it (the exporters flush). */
const relay = (config: Config.RelayConfig, dir: string, total: number, logged: Array<string>) =>
  Effect.gen(function* () {
    const stop = yield* Deferred.make<void>()
    const metrics = new Metrics()
    const fiber = yield* Runner.run(config, { stop, metrics }).pipe(Effect.forkChild)
    yield* waitUntil(
      "both sinks to be done with every event",
      () =>
        recorded(Path.join(dir, "archive.log")).length === total &&
        metrics.sink("chat").delivered + metrics.sink("chat").deadLettered === total,
      60_000
    )
    yield* Deferred.succeed(stop, undefined)
    yield* Fiber.join(fiber)
    return metrics
  }).pipe(
    Effect.provide(logLayer({ level: "info", format: "json", terminal: false })),
    Effect.provideService(Console.Console, {
      ...globalThis.console,
      error: (...args: ReadonlyArray<unknown>) => void logged.push(args.join(" "))
    }),
    // As the CLI runs every command (internal/main.ts): the export turns the tracer on.
    Effect.withTracerEnabled(false)
  )

// OTLP/JSON, as the exporter writes it.
interface Attribute {
  readonly key: string
  readonly value: Record<string, unknown>
}
interface Span {
  readonly name: string
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly attributes: ReadonlyArray<Attribute>
}

const value = (v: Record<string, unknown>): unknown =>
  "stringValue" in v
    ? v.stringValue
    : "intValue" in v
      ? Number(v.intValue)
      : "doubleValue" in v
        ? v.doubleValue
        : v.boolValue
const attributesOf = (attributes: ReadonlyArray<Attribute> | undefined) =>
  Object.fromEntries((attributes ?? []).map((a) => [a.key, value(a.value)]))

const bodies = (received: ReadonlyArray<Received>, path: string): Array<any> =>
  received.filter((r) => r.path === path).map((r) => JSON.parse(r.body.toString("utf8")))

describe("OpenTelemetry export (OTLP/HTTP)", () => {
  it.live(
    "spans per page read and per batch, the runner's metrics, and logs with their trace, as JSON",
    () =>
      Effect.gen(function* () {
        const total = 120
        const server = yield* standIn(total)
        const busyType = server.events()[3]!.event
        const busy = server.events().filter((e) => e.event === busyType).length
        const otlp = yield* receiver
        const dir = tempDir()
        const config = yield* configFor(
          server,
          dir,
          { endpoint: otlp.url, protocol: "http/json", serviceName: "relay-under-test" },
          busyType
        )
        const logged: Array<string> = []
        yield* relay(config, dir, total, logged)

        // -- traces
        const resourceSpans = bodies(otlp.received, "/v1/traces").flatMap((b) => b.resourceSpans)
        expect(attributesOf(resourceSpans[0].resource.attributes)).toMatchObject({
          "service.name": "relay-under-test"
        })
        const spans: Array<Span> = resourceSpans.flatMap((r: any) =>
          r.scopeSpans.flatMap((s: any) => s.spans)
        )
        const named = (name: string) => spans.filter((s) => s.name === name)
        const pages = named("workos_relay.read_page")
        expect(pages.length).toBeGreaterThan(0)
        const read = pages.map((p) => attributesOf(p.attributes))
        for (const a of read) {
          expect(a["workos_relay.source"]).toBe("workos")
          expect(a["workos_relay.order"]).toBe("asc")
          // No cursor in any attribute: ids are for the logs of one event, not a span's.
          expect(Object.values(a).some((v) => String(v).startsWith("event_"))).toBe(false)
        }
        // Every event read (the shared reader's pages; a page may be read again past the end).
        // A poll cut short by the stop read nothing: its span has no count.
        const counted = read.filter((a) => a["workos_relay.events"] !== undefined)
        expect(counted.length).toBeGreaterThanOrEqual(read.length - 1)
        expect(
          counted.reduce((n, a) => n + (a["workos_relay.events"] as number), 0)
        ).toBeGreaterThanOrEqual(total)

        const batches = named("workos_relay.deliver").map((s) => ({
          span: s,
          a: attributesOf(s.attributes)
        }))
        const archive = batches.filter((b) => b.a["workos_relay.sink"] === "archive")
        expect(archive.every((b) => b.a["workos_relay.outcome"] === "delivered")).toBe(true)
        expect(archive.every((b) => b.a["workos_relay.attempts"] === 1)).toBe(true)
        expect(archive.reduce((n, b) => n + (b.a["workos_relay.delivered"] as number), 0)).toBe(
          total
        )
        const chat = batches.filter((b) => b.a["workos_relay.sink"] === "chat")
        expect(chat.reduce((n, b) => n + (b.a["workos_relay.events"] as number), 0)).toBe(total)
        expect(chat.reduce((n, b) => n + (b.a["workos_relay.dead_lettered"] as number), 0)).toBe(
          busy
        )
        const retried = chat.find((b) => b.a["workos_relay.outcome"] === "partly_dead_lettered")!
        expect(retried.a["workos_relay.attempts"]).toBeGreaterThan(1)
        // Its attempts: children, numbered, each with what came of it.
        const attempts = named("workos_relay.deliver.attempt")
          .filter((s) => s.parentSpanId === retried.span.spanId)
          .map((s) => attributesOf(s.attributes))
        expect(attempts.map((a) => a["workos_relay.attempt"])).toEqual(
          attempts.map((_, i) => i + 1)
        )
        expect(attempts[0]).toMatchObject({
          "workos_relay.sink": "chat",
          "workos_relay.outcome": "partial"
        })
        expect(attempts[0]!["workos_relay.retry"]).toBeGreaterThan(0)

        // -- logs: the retry warning is in the batch's span, in the export and on stderr
        const records = bodies(otlp.received, "/v1/logs").flatMap((b) =>
          b.resourceLogs.flatMap((r: any) => r.scopeLogs.flatMap((s: any) => s.logRecords))
        )
        const warning = records.find(
          (r: any) =>
            String(value(r.body)).startsWith("sink chat: delivery failed") &&
            r.spanId === retried.span.spanId
        )
        expect(warning?.traceId).toBe(retried.span.traceId)
        const line = logged.map((l) => JSON.parse(l)).find((l) => l.span_id === retried.span.spanId)
        expect(line?.message).toMatch(/^sink chat: delivery failed/)
        expect(line?.trace_id).toBe(retried.span.traceId)

        // -- metrics: the /metrics series, with their labels as attributes
        const metrics = bodies(otlp.received, "/v1/metrics").flatMap((b) =>
          b.resourceMetrics.flatMap((r: any) => r.scopeMetrics.flatMap((s: any) => s.metrics))
        )
        const last = (name: string, sink: string) =>
          metrics
            .filter((m: any) => m.name === name)
            .flatMap((m: any) => (m.sum ?? m.gauge ?? m.histogram).dataPoints)
            .filter((p: any) => attributesOf(p.attributes).sink === sink)
            .at(-1)
        const number = (p: any) => Number(p?.asInt ?? p?.asDouble)
        expect(number(last("workos_relay_events_delivered_total", "archive"))).toBe(total)
        expect(number(last("workos_relay_events_delivered_total", "chat"))).toBe(total - busy)
        expect(number(last("workos_relay_events_dead_lettered_total", "chat"))).toBe(busy)
        expect(number(last("workos_relay_events_retried_total", "chat"))).toBeGreaterThan(0)
        expect(Number(last("workos_relay_delivery_latency_seconds", "archive")?.count)).toBe(total)
        expect(metrics.some((m: any) => m.name === "workos_relay_events_fetched_total")).toBe(true)
        expect(metrics.some((m: any) => m.name === "workos_relay_sink_up")).toBe(true)
      }).pipe(Effect.scoped),
    90_000
  )

  it.live("protobuf by default, to the endpoint of OTEL_EXPORTER_OTLP_ENDPOINT", () =>
    Effect.gen(function* () {
      const total = 30
      const server = yield* standIn(total)
      const otlp = yield* receiver
      const dir = tempDir()
      const config = yield* Config.decode(
        {
          source: {
            type: "workos",
            apiKey: server.apiKey,
            baseUrl: server.url,
            start: "earliest",
            pollInterval: "50ms"
          },
          state: { sqlite: Path.join(dir, "state.db") },
          shutdownTimeout: "2s",
          sinks: {
            archive: { module: "./recording-sink.mjs", path: Path.join(dir, "archive.log") },
            chat: { module: "./recording-sink.mjs", path: Path.join(dir, "chat.log") }
          }
        },
        {
          file: "test",
          baseDir: fixtures,
          env: {
            OTEL_EXPORTER_OTLP_ENDPOINT: `${otlp.url}/collector`,
            OTEL_EXPORTER_OTLP_HEADERS: "x-token=s%20ecret",
            OTEL_SERVICE_NAME: "relay-env"
          }
        }
      )
      expect(config.otlp).toMatchObject({ protocol: "http/protobuf", from: "environment" })
      yield* relay(config, dir, total, [])
      const traces = otlp.received.filter((r) => r.path === "/collector/v1/traces")
      expect(traces.length).toBeGreaterThan(0)
      expect(traces.every((r) => r.contentType === "application/x-protobuf")).toBe(true)
      // Protobuf strings are their UTF-8 bytes: the names are in the bodies as written.
      const sent = Buffer.concat(traces.map((r) => r.body)).toString("latin1")
      for (const name of ["workos_relay.read_page", "workos_relay.deliver", "relay-env"])
        expect(sent).toContain(name)
      const metrics = Buffer.concat(
        otlp.received.filter((r) => r.path === "/collector/v1/metrics").map((r) => r.body)
      ).toString("latin1")
      expect(metrics).toContain("workos_relay_events_delivered_total")
    }).pipe(Effect.scoped)
  )

  it.live(
    "a collector that is down costs no event: every one delivered, the stop on time",
    () =>
      Effect.gen(function* () {
        const total = 40
        const server = yield* standIn(total)
        // A port nobody listens on any more: every export is refused.
        const gone = yield* Effect.scoped(receiver)
        const dir = tempDir()
        const config = yield* configFor(
          server,
          dir,
          { endpoint: gone.url, protocol: "http/json", exportInterval: "50ms" },
          "no.such.type"
        )
        const logged: Array<string> = []
        // The stop waits for the exporters at most their shutdown timeout (3 s): `relay` returns.
        const metrics = yield* relay(config, dir, total, logged)
        expect(recorded(Path.join(dir, "archive.log"))).toEqual(server.events().map((e) => e.id))
        expect(metrics.sink("chat").delivered).toBe(total)
      }).pipe(Effect.scoped),
    60_000
  )

  it.effect("bad OTEL_* settings are config errors that say which variable", () =>
    Effect.gen(function* () {
      const decode = (env: Record<string, string>) =>
        Config.decode(
          {
            source: { type: "workos", apiKey: "sk_test_x" },
            sinks: { archive: { module: "./recording-sink.mjs", path: "/tmp/x.log" } }
          },
          { file: "relay.yaml", baseDir: fixtures, env }
        ).pipe(
          Effect.flip,
          Effect.map((e) => e.message)
        )
      expect(yield* decode({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" })).toContain(
        "$OTEL_EXPORTER_OTLP_ENDPOINT"
      )
      expect(
        yield* decode({
          OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318",
          OTEL_EXPORTER_OTLP_PROTOCOL: "grpc"
        })
      ).toContain("grpc is not supported")
      const off = yield* Config.decode(
        {
          source: { type: "workos", apiKey: "sk_test_x" },
          sinks: { archive: { module: "./recording-sink.mjs", path: "/tmp/x.log" } }
        },
        {
          file: "relay.yaml",
          baseDir: fixtures,
          env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_SDK_DISABLED: "true" }
        }
      )
      expect(off.otlp).toBeUndefined()
      const fileBad = yield* Config.decode(
        {
          source: { type: "workos", apiKey: "sk_test_x" },
          telemetry: { otlp: { endpoint: "ftp://x", protocol: "grpc" } },
          sinks: { archive: { module: "./recording-sink.mjs", path: "/tmp/x.log" } }
        },
        { file: "relay.yaml", baseDir: fixtures, env: {} }
      ).pipe(Effect.flip)
      expect(fileBad.message).toContain("telemetry.otlp.endpoint")
      expect(fileBad.message).toContain("telemetry.otlp.protocol")
    })
  )
})
