/**
 * The logger of every command: logfmt on a terminal, JSON lines otherwise, on stderr.
 * Apart from ./Observability.ts (metrics, health routes) so that `--help` and the
 * commands that only log do not load effect/http and the metrics.
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"

const levels: Record<string, LogLevel.LogLevel> = {
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  error: "Error"
}

/**
 * Clears the terminal's current line. The live summary line ends without a newline, so
 * a log line written after it would otherwise continue it.
 */
export const clearLine = "\r\x1b[K"

/** The span a fiber runs in, when it is recorded (not a no-op span of a disabled tracer). */
export const recordedSpan = (context: Context.Context<never>): Tracer.Span | undefined => {
  const span = Context.getOrUndefined(context, Tracer.ParentSpan)
  return span !== undefined && span._tag === "Span" && span.sampled ? span : undefined
}

/**
 * A line written inside a recorded span (OpenTelemetry export on, `Telemetry.ts`)
 * says which: `trace_id` and `span_id`, as the exported log record does.
 */
const withTraceIds = (format: Logger.Logger<unknown, string>, logfmt: boolean) =>
  Logger.make<unknown, string>((options) => {
    const line = format.log(options)
    const span = recordedSpan(options.fiber.context)
    if (span === undefined) return line
    return logfmt
      ? `${line} trace_id=${span.traceId} span_id=${span.spanId}`
      : `${line.slice(0, -1)},"trace_id":"${span.traceId}","span_id":"${span.spanId}"}`
  })

/**
 * The logger: logfmt on a terminal (or when asked), JSON lines otherwise; on stderr, so
 * stdout stays the data. On a terminal each line first clears the live summary line.
 */
export const logLayer = (options: {
  readonly level: string
  readonly format: "auto" | "json" | "logfmt"
  /** Whether stderr is a terminal (default: asks it). */
  readonly terminal?: boolean
  /** The command line's `--log-level`, which wins over `level`. */
  readonly override?: LogLevel.LogLevel | undefined
}) => {
  const terminal = options.terminal ?? process.stderr.isTTY === true
  const logfmt = options.format === "logfmt" || (options.format === "auto" && terminal)
  const format = withTraceIds(logfmt ? Logger.formatLogFmt : Logger.formatJson, logfmt)
  const logger = Logger.withConsoleError(
    terminal ? Logger.map(format, (line) => `${clearLine}${line}`) : format
  )
  return Layer.mergeAll(
    Logger.layer([logger]),
    Layer.succeed(References.MinimumLogLevel, options.override ?? levels[options.level] ?? "Info")
  )
}
