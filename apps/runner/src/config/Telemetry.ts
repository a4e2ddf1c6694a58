/**
 * The `telemetry` section: OpenTelemetry export over OTLP/HTTP (traces, metrics, logs),
 * see `Telemetry.ts`. Without the section, the standard variables turn it on:
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (with `OTEL_EXPORTER_OTLP_HEADERS`,
 * `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_SERVICE_NAME`; `OTEL_SDK_DISABLED=true` turns
 * it off).
 *
 * ```yaml
 * telemetry:
 *   otlp:
 *     endpoint: http://127.0.0.1:4318      # /v1/traces, /v1/metrics, /v1/logs are added
 *     headers: { authorization: "Bearer ${OTLP_TOKEN}" }
 *     serviceName: workos-relay
 * ```
 */
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { Problem } from "./Problem.ts"
import { HttpUrl, ms, PositiveDuration } from "./Values.ts"

export const protocols = ["http/protobuf", "http/json"] as const

const Otlp = Schema.Struct({
  endpoint: HttpUrl.annotate({
    description:
      "The OTLP/HTTP collector's base URL (/v1/traces, /v1/metrics and /v1/logs are added); http://127.0.0.1:4318"
  }),
  headers: Schema.optionalKey(
    Schema.Record(
      Schema.String,
      Schema.Redacted(Schema.String).annotate({ description: "A header sent with every export" })
    )
  ),
  serviceName: Schema.optionalKey(
    Schema.String.annotate({
      description: 'The service.name resource attribute (default "workos-relay")'
    })
  ),
  protocol: Schema.optionalKey(
    Schema.Literals(protocols).annotate({
      description: 'How exports are encoded (default "http/protobuf")'
    })
  ),
  exportInterval: Schema.optionalKey(
    PositiveDuration.annotate({
      description: "How often metrics are sent (default 10s); spans and logs go every 5s and 1s"
    })
  )
})

export const Telemetry = Schema.Struct({ otlp: Schema.optionalKey(Otlp) })
export type TelemetryFile = typeof Telemetry.Type

/** Where and how to export; absent: no export. */
export interface OtlpSettings {
  readonly endpoint: string
  readonly headers: Readonly<Record<string, Redacted.Redacted<string>>>
  readonly serviceName: string
  readonly protocol: (typeof protocols)[number]
  /** Metrics' export interval (ms); undefined: the exporter's default. */
  readonly exportInterval: number | undefined
  /** Where the settings came from, as `validate` says. */
  readonly from: "config" | "environment"
}

export const defaultServiceName = "workos-relay"

/** `k1=v1,k2=v2` (values URI-encoded), as `OTEL_EXPORTER_OTLP_HEADERS` has them. */
const parseHeaders = (text: string, problems: Array<Problem>) => {
  const headers: Record<string, Redacted.Redacted<string>> = {}
  for (const pair of text.split(",")) {
    if (pair.trim() === "") continue
    const eq = pair.indexOf("=")
    const key = eq < 0 ? "" : pair.slice(0, eq).trim()
    if (key === "") {
      problems.push({
        path: "$OTEL_EXPORTER_OTLP_HEADERS",
        message: "expected key=value pairs separated by commas"
      })
      continue
    }
    try {
      headers[key] = Redacted.make(decodeURIComponent(pair.slice(eq + 1).trim()))
    } catch {
      problems.push({
        path: "$OTEL_EXPORTER_OTLP_HEADERS",
        message: `the value of ${key} is not URI-encoded`
      })
    }
  }
  return headers
}

/**
 * The export settings: the file's section, else the standard `OTEL_*` variables;
 * undefined when neither asks for an export. What is wrong goes to `problems`.
 */
export const otlpSettings = (
  file: TelemetryFile | undefined,
  env: Readonly<Record<string, string | undefined>>,
  problems: Array<Problem>
): OtlpSettings | undefined => {
  const section = file?.otlp
  if (section !== undefined)
    return {
      endpoint: section.endpoint,
      headers: section.headers ?? {},
      serviceName: section.serviceName ?? env.OTEL_SERVICE_NAME ?? defaultServiceName,
      protocol: section.protocol ?? "http/protobuf",
      exportInterval:
        section.exportInterval === undefined ? undefined : ms(section.exportInterval, 0),
      from: "config"
    }
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT
  if (endpoint === undefined || endpoint === "" || env.OTEL_SDK_DISABLED === "true")
    return undefined
  if (!/^https?:\/\/[^/]/.test(endpoint)) {
    problems.push({
      path: "$OTEL_EXPORTER_OTLP_ENDPOINT",
      message: `expected an http(s) URL such as http://127.0.0.1:4318, got ${JSON.stringify(endpoint)}`
    })
    return undefined
  }
  const protocol = env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf"
  if (!(protocols as ReadonlyArray<string>).includes(protocol)) {
    problems.push({
      path: "$OTEL_EXPORTER_OTLP_PROTOCOL",
      message: `expected one of ${protocols.join(", ")} (grpc is not supported), got ${JSON.stringify(protocol)}`
    })
    return undefined
  }
  return {
    endpoint,
    headers: parseHeaders(env.OTEL_EXPORTER_OTLP_HEADERS ?? "", problems),
    serviceName: env.OTEL_SERVICE_NAME || defaultServiceName,
    protocol: protocol as OtlpSettings["protocol"],
    exportInterval: undefined,
    from: "environment"
  }
}
