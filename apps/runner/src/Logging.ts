/**
 * The logger of every command: logfmt on a terminal, JSON lines otherwise, on stderr.
 * Apart from ./Observability.ts (metrics, health routes) so that `--help` and the
 * commands that only log do not load effect/http and the metrics.
 */
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"
import * as References from "effect/References"

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
  const format = logfmt ? Logger.formatLogFmt : Logger.formatJson
  const logger = Logger.withConsoleError(
    terminal ? Logger.map(format, (line) => `${clearLine}${line}`) : format
  )
  return Layer.mergeAll(
    Logger.layer([logger]),
    Layer.succeed(References.MinimumLogLevel, options.override ?? levels[options.level] ?? "Info")
  )
}
