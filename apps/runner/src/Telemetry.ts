/**
 * OpenTelemetry: traces, metrics and logs exported over OTLP/HTTP with
 * `effect/observability`'s `Otlp`, when `telemetry.otlp` or `OTEL_EXPORTER_OTLP_ENDPOINT`
 * asks for it (`config/Telemetry.ts`).
 *
 * - traces: a span per page read from WorkOS (`workos_relay.read_page`, the HTTP
 *   request and its retries) and per batch handed to a sink (`workos_relay.deliver`), with a
 *   child per attempt (`workos_relay.deliver.attempt`);
 * - metrics: the runner's registry (`Metrics.ts`), the same series as `/metrics`;
 * - logs: every log line, with the trace and span it was written in.
 *
 * Without an export the tracer stays off (see `internal/main.ts`), and `traced` adds
 * no span at all: even a no-op span costs a few microseconds (a new context, and a
 * stack trace unless told not to).
 */
import type { WorkOS } from "@workos-relay/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { FetchHttpClient } from "effect/http"
import * as Layer from "effect/Layer"
import { Otlp, OtlpSerialization } from "effect/observability"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import type * as Tracer from "effect/Tracer"
import type { OtlpSettings } from "./config/Telemetry.ts"
import { version } from "./internal/version.ts"
import { recordedSpan } from "./Logging.ts"

/** The exporters of traces, metrics and logs; the metrics are read from the registry in the context it is built in. */
export const layer = (settings: OtlpSettings) =>
  Otlp.layer({
    baseUrl: settings.endpoint,
    resource: { serviceName: settings.serviceName, serviceVersion: version },
    headers: Object.fromEntries(
      Object.entries(settings.headers).map(([name, value]) => [name, Redacted.value(value)])
    ),
    ...(settings.exportInterval === undefined
      ? {}
      : { metricsExportInterval: Duration.millis(settings.exportInterval) })
  }).pipe(
    Layer.provide(
      settings.protocol === "http/json"
        ? OtlpSerialization.layerJson
        : OtlpSerialization.layerProtobuf
    ),
    Layer.provide(FetchHttpClient.layer)
  )

/** Runs `effect` exporting to OTLP when `settings` say so (the tracer on); as it is otherwise. */
export const exporting =
  (settings: OtlpSettings | undefined) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    settings === undefined
      ? effect
      : effect.pipe(Effect.withTracerEnabled(true), Effect.provide(layer(settings)))

/** `effect` in a span named `name` when the tracer is on; `effect` itself otherwise. */
export const traced =
  (name: string, attributes: Record<string, unknown>, kind?: Tracer.SpanKind) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withFiber((fiber) =>
      fiber.getRef(References.TracerEnabled)
        ? Effect.withSpan(effect, name, {
            attributes,
            captureStackTrace: false,
            ...(kind === undefined ? {} : { kind })
          })
        : effect
    )

export { recordedSpan }

/** Sets attributes on the current span; `attributes` runs only when the span is recorded. */
export const annotate = (attributes: () => Record<string, unknown>): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    const span = recordedSpan(fiber.context)
    if (span !== undefined)
      for (const [key, value] of Object.entries(attributes())) span.attribute(key, value)
    return Effect.void
  })

/** The WorkOS client with a span per page read: how many events, how many undecodable. No cursor. */
export const tracedClient = (client: WorkOS.Service, source: string): WorkOS.Service => ({
  ...client,
  listEvents: (params) =>
    client.listEvents(params).pipe(
      Effect.tap((page) =>
        annotate(() => {
          let undecodable = 0
          for (const result of page.data) if (result._tag === "Failure") undecodable++
          return {
            "workos_relay.events": page.data.length,
            "workos_relay.undecodable": undecodable,
            "workos_relay.more": page.list_metadata.after !== null
          }
        })
      ),
      traced(
        "workos_relay.read_page",
        {
          "workos_relay.source": source,
          "workos_relay.page_size": params?.limit ?? 10,
          "workos_relay.order": params?.order ?? "desc"
        },
        "client"
      )
    )
})
