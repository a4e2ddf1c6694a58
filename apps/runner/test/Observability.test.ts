import { describe, expect, it } from "@effect/vitest"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as HttpServer from "../src/http/Server.ts"
import {
  catchUpText,
  clearLine,
  logLayer,
  Metrics,
  paths,
  routes,
  summaryLine
} from "../src/Observability.ts"

/** What the logger writes with `console.error`, for a log line at warn level. */
const logged = (terminal: boolean, format: "auto" | "json" | "logfmt") =>
  Effect.gen(function* () {
    const lines: Array<string> = []
    yield* Effect.logWarning("sink chat: slow").pipe(
      Effect.provide(logLayer({ level: "info", format, terminal })),
      Effect.provideService(Console.Console, {
        ...globalThis.console,
        error: (...args: ReadonlyArray<unknown>) => void lines.push(args.join(" "))
      })
    )
    return lines
  })

describe("Observability", () => {
  it.effect(
    "on a terminal, a log line first clears the live summary line; elsewhere, nothing is added",
    () =>
      Effect.gen(function* () {
        const [onTerminal] = yield* logged(true, "auto")
        expect(onTerminal!.startsWith(`${clearLine}timestamp=`)).toBe(true)
        expect(onTerminal).toContain('message="sink chat: slow"')
        const [piped] = yield* logged(false, "auto")
        expect(JSON.parse(piped!).message).toBe("sink chat: slow")
        const [forced] = yield* logged(false, "logfmt")
        expect(forced!.startsWith("timestamp=")).toBe(true)
      })
  )

  it("the summary line: events/s since the last one, lag, dead letters, a failed sink", () => {
    const metrics = new Metrics()
    const previous = new Map<string, number>()
    metrics.fetched = 300
    const a = metrics.sink("a")
    const b = metrics.sink("b")
    metrics.sink("c")
    summaryLine(metrics, previous, 1000)
    a.delivered = 200
    a.filtered = 50
    a.lagEvents = 50
    a.lagMs = 1500
    b.deadLettered = 3
    const c = metrics.sink("c")
    c.lagEvents = 100
    c.state = "failed"
    expect(summaryLine(metrics, previous, 500)).toBe(
      "fetched 300 | a: 500/s lag 50 ev 1.5s | b: 6/s lag 0 ev 0ms dlq 3 | c: FAILED"
    )
  })

  it("/metrics: a sink name is escaped as the text format asks, so no two names collide", () => {
    const metrics = new Metrics()
    metrics.sink('a"b').delivered = 1
    metrics.sink("a_b").delivered = 2
    metrics.sink("back\\slash").delivered = 3
    metrics.sink("two\nlines").delivered = 4
    const delivered = metrics
      .render()
      .split("\n")
      .filter((line) => line.startsWith("workos_relay_events_delivered_total{"))
    expect(delivered).toEqual([
      'workos_relay_events_delivered_total{sink="a\\"b"} 1',
      'workos_relay_events_delivered_total{sink="a_b"} 2',
      'workos_relay_events_delivered_total{sink="back\\\\slash"} 3',
      'workos_relay_events_delivered_total{sink="two\\nlines"} 4'
    ])
  })

  it("/metrics: spec mismatches by type, each event counted once, the first of a type told", () => {
    const metrics = new Metrics()
    const lines = () =>
      metrics
        .render()
        .split("\n")
        .filter((line) => line.includes("workos_relay_spec_mismatches_total"))
    // An effect Metric family is served from its first series on.
    expect(lines()).toEqual([])
    expect(metrics.specMismatch("event_1", "role.created")).toBe(true)
    // Another lane taking the same event: not counted again.
    expect(metrics.specMismatch("event_1", "role.created")).toBe(false)
    expect(metrics.specMismatch("event_2", "role.created")).toBe(false)
    expect(metrics.specMismatch("event_3", 'odd"type')).toBe(true)
    expect(lines()).toEqual([
      expect.stringMatching(/^# HELP workos_relay_spec_mismatches_total /),
      "# TYPE workos_relay_spec_mismatches_total counter",
      'workos_relay_spec_mismatches_total{type="role.created"} 2',
      'workos_relay_spec_mismatches_total{type="odd\\"type"} 1'
    ])
  })
})

describe("catch-up progress", () => {
  it("the live line and /metrics show slices, events/s and time left while a catch-up runs", () => {
    const metrics = new Metrics()
    expect(summaryLine(metrics, new Map(), 1000)).not.toContain("catching up")
    expect(metrics.render()).toContain("workos_relay_catch_up_active 0")
    const now = 1_000_000
    const c = metrics.catchUp
    c.active = true
    c.startedAt = now - 10_000
    c.from = 0
    c.reached = 25
    c.to = 100
    c.slicesDone = 5
    c.slicesTotal = 20
    c.slicesOpen = 4
    c.events = 50_000
    // A quarter of the range in 10 s: 30 s left; 50,000 events in 10 s.
    expect(c.timeLeftMs(now)).toBe(30_000)
    expect(c.eventsPerSecond(now)).toBe(5_000)
    const line = catchUpText(c, now)
    expect(line).toContain("slices 5/20 (4 open)")
    expect(line).toContain("5000 ev/s")
    expect(line).toContain("30s left")
    const text = metrics.render(now)
    expect(text).toContain("workos_relay_catch_up_active 1")
    expect(text).toContain("workos_relay_catch_up_slices_done 5")
    expect(text).toContain("workos_relay_catch_up_seconds_left 30")
  })
})

describe("the HTTP server (effect/http)", () => {
  it.live("serves /healthz, /readyz and /metrics as before; 404 names them", () =>
    Effect.gen(function* () {
      const metrics = new Metrics()
      metrics.sink("a").delivered = 3
      const port = yield* HttpServer.serve(
        Layer.mergeAll(routes(metrics), HttpServer.notFound(paths)),
        { host: "127.0.0.1", port: 0 }
      )
      const get = (path: string) =>
        Effect.promise(() =>
          fetch(`http://127.0.0.1:${port}${path}`).then(async (r) => ({
            status: r.status,
            type: r.headers.get("content-type"),
            text: await r.text()
          }))
        )
      expect(yield* get("/healthz")).toEqual({ status: 200, type: "text/plain", text: "ok\n" })
      expect(yield* get("/readyz")).toEqual({
        status: 503,
        type: "text/plain",
        text: "not ready: waiting for the lease\n"
      })
      metrics.ready = true
      metrics.sink("a").state = "failed"
      expect((yield* get("/readyz")).text).toBe("not ready: sinks failed: a\n")
      metrics.sink("a").state = "running"
      expect((yield* get("/readyz")).status).toBe(200)
      const scraped = yield* get("/metrics?x=1")
      expect(scraped.type).toBe("text/plain; version=0.0.4")
      expect(scraped.text).toContain('workos_relay_events_delivered_total{sink="a"} 3')
      // A sink's own effect Metric (the mirror's reconcile rounds) is served after them.
      const rounds = Metric.counter("workos_relay_test_rounds_total", { incremental: true })
      yield* Metric.update(Metric.withAttributes(rounds, { sink: "m" }), 2)
      const after = (yield* get("/metrics")).text
      expect(after).toMatch(/^workos_relay_test_rounds_total\{sink="m"\} 2$/m)
      expect(after.indexOf("workos_relay_events_delivered_total")).toBeLessThan(
        after.indexOf("workos_relay_test_rounds_total")
      )
      expect(yield* get("/nothing")).toEqual({
        status: 404,
        type: "text/plain",
        text: "not found: try /healthz, /readyz or /metrics\n"
      })
    }).pipe(Effect.scoped)
  )
})
