/**
 * A parsed config document to a `RelayConfig`. Every problem of a file is reported at
 * once, each with its path, and a misspelt key with the closest known one.
 */
import * as Path from "node:path"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { checkPatterns, checkSourceType, parseAddress, startTimeProblem } from "./Checks.ts"
import { checkCluster, clusterSettings } from "./Cluster.ts"
import { checkConsole, consoleSettings } from "./Console.ts"
import { isRecord } from "./Guards.ts"
import { interpolate } from "./Interpolate.ts"
import { decodeAll } from "./Issues.ts"
import { ConfigError, type Problem } from "./Problem.ts"
import {
  defaults,
  File,
  type FileType,
  type RelayConfig,
  type SinkConfig,
  type Source
} from "./Schema.ts"
import { decodeSink } from "./SinkEntry.ts"
import { ms, num } from "./Values.ts"
import { checkWebhooks, webhookSettings } from "./Webhooks.ts"

/**
 * Decodes a parsed document: interpolation, the runner's keys, each sink's entry
 * (loading its definition) and options. `file` names the source in errors; relative
 * sink modules and the SQLite path resolve from `baseDir`.
 */
export const decode = (
  document: unknown,
  options: {
    readonly file: string
    readonly baseDir: string
    readonly env?: Readonly<Record<string, string | undefined>>
  }
): Effect.Effect<RelayConfig, ConfigError> =>
  Effect.gen(function* () {
    const problems: Array<Problem> = []
    // A value whose variable is missing or malformed has one problem, not also the
    // one its stand-in ("" or the text as written) has.
    let interpolationProblems = 0
    const fail = () => {
      const badVariables = new Set(problems.slice(0, interpolationProblems).map((p) => p.path))
      const shown = problems.filter(
        (p, i) => i < interpolationProblems || !badVariables.has(p.path)
      )
      return Effect.fail(new ConfigError({ file: options.file, problems: shown }))
    }
    if (typeof document !== "object" || document === null || Array.isArray(document)) {
      problems.push({
        path: "",
        message: "expected a mapping with source and sinks (and state, optionally)"
      })
      return yield* fail()
    }
    const env = options.env ?? process.env
    const interpolated = interpolate(document, env, "", problems)
    interpolationProblems = problems.length
    const file = decodeAll<FileType>(File as any, File.ast, interpolated, "", problems)
    // Whether or not the file decoded, every check below runs on what is there, so one
    // error lists every problem.
    const raw = interpolated as Record<string, any>
    // As WorkOS's own SDKs do, the key comes from WORKOS_API_KEY when the file has none.
    const envApiKey = env.WORKOS_API_KEY === "" ? undefined : env.WORKOS_API_KEY
    checkTopLevel(raw, envApiKey, problems)
    checkWebhooks(raw, problems)
    checkConsole(raw, problems)
    checkCluster(raw, problems)
    const http =
      isRecord(raw.http) && typeof raw.http.address === "string"
        ? parseAddress(raw.http.address, problems)
        : undefined
    const rawSinks: Record<string, unknown> = isRecord(raw.sinks) ? raw.sinks : {}
    const sinkNames = Object.keys(rawSinks)
    if (isRecord(raw.sinks) && sinkNames.length === 0)
      problems.push({
        path: "sinks",
        message: "no sinks: add at least one (type: console prints every event)"
      })
    const sinks: Array<SinkConfig> = []
    const context = { file, baseDir: options.baseDir }
    for (const name of sinkNames) {
      const sink = yield* decodeSink(name, rawSinks[name], context, problems)
      if (sink !== undefined) sinks.push(sink)
    }
    if (problems.length > 0 || file === undefined) return yield* fail()
    return relayConfig(file, {
      file: options.file,
      baseDir: options.baseDir,
      envApiKey,
      http,
      sinks
    })
  })

/** The checks of the file's own keys (not the sinks') that its Schema cannot make. */
const checkTopLevel = (
  raw: Record<string, any>,
  envApiKey: string | undefined,
  problems: Array<Problem>
) => {
  const rawSource = isRecord(raw.source) ? raw.source : {}
  const rawState = isRecord(raw.state) ? raw.state : {}
  checkSourceType(raw, problems)
  checkPatterns(raw.events, "events", problems)
  if (rawSource.type === "workos" && rawSource.apiKey === undefined && envApiKey === undefined) {
    problems.push({
      path: "source.apiKey",
      message:
        "no API key: set WORKOS_API_KEY in the environment, or give one here (apiKey: ${MY_WORKOS_KEY})"
    })
  }
  if (rawSource.type === "workos") {
    checkPatterns(rawSource.events, "source.events", problems)
    const start = rawSource.start
    if (
      typeof start === "string" &&
      start !== "latest" &&
      start !== "earliest" &&
      !start.startsWith("event_")
    ) {
      const problem = startTimeProblem(start)
      if (problem !== undefined) problems.push({ path: "source.start", message: problem })
    }
  }
  if (typeof rawState.sqlite === "string" && rawState.sqlite.trim() === "") {
    problems.push({ path: "state.sqlite", message: 'expected the path of a SQLite file, got ""' })
  }
  if (rawState.sqlite !== undefined && rawState.postgres !== undefined) {
    problems.push({ path: "state", message: "give either sqlite or postgres, not both" })
  }
}

/** The config of a file with no problems, its defaults filled in. */
const relayConfig = (
  file: FileType,
  parts: {
    readonly file: string
    readonly baseDir: string
    readonly envApiKey: string | undefined
    readonly http: RelayConfig["http"]
    readonly sinks: ReadonlyArray<SinkConfig>
  }
): RelayConfig => {
  const leaseTtl = ms(file.state?.leaseTtl, defaults.leaseTtl)
  const source: Source =
    file.source.type === "workos"
      ? {
          type: "workos",
          apiKey: file.source.apiKey ?? Redacted.make(parts.envApiKey!),
          baseUrl: file.source.baseUrl ?? "https://api.workos.com",
          events: file.source.events,
          organization: file.source.organization,
          start: file.source.start ?? "latest",
          pollInterval: ms(file.source.pollInterval, defaults.pollInterval),
          pageSize: num(file.source.pageSize, defaults.pageSize),
          reReadWindow: ms(file.source.reReadWindow, defaults.reReadWindow),
          retention: ms(file.source.retention, defaults.retention),
          onGap: file.source.onGap ?? "continue",
          maxRequestsPerMinute: num(
            file.source.maxRequestsPerMinute,
            defaults.maxRequestsPerMinute
          ),
          catchUp: {
            enabled: file.source.catchUp?.enabled ?? defaults.catchUp.enabled,
            minBehind: ms(file.source.catchUp?.minBehind, defaults.catchUp.minBehind),
            minEvents: num(file.source.catchUp?.minEvents, defaults.catchUp.minEvents),
            slices: num(file.source.catchUp?.slices, defaults.catchUp.slices)
          }
        }
      : {
          type: "demo",
          rate: num(file.source.rate, defaults.demoRate),
          pollInterval: ms(file.source.pollInterval, 250)
        }
  return {
    path: parts.file,
    source,
    state:
      file.state?.postgres !== undefined
        ? { type: "postgres", url: file.state.postgres, leaseTtl }
        : {
            type: "sqlite",
            path: Path.resolve(parts.baseDir, file.state?.sqlite ?? defaults.statePath),
            leaseTtl
          },
    http: parts.http,
    ...(file.webhooks === undefined ? {} : { webhooks: webhookSettings(file.webhooks) }),
    ...(file.console === undefined ? {} : { console: consoleSettings(file.console) }),
    ...(file.cluster === undefined ? {} : { cluster: clusterSettings(file.cluster) }),
    log: { level: file.log?.level ?? "info", format: file.log?.format ?? "auto" },
    shutdownTimeout: ms(file.shutdownTimeout, defaults.shutdownTimeout),
    sinks: parts.sinks
  }
}
