/**
 * A parsed config document to a `RelayConfig`. Every problem of a file is reported at
 * once, each with its path, and a misspelt key with the closest known one.
 */
import * as Path from "node:path"
import { Text } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { serverInstalled, serverMissing } from "../http/Package.ts"
import { checkPatterns, checkSourceType, parseAddress, startTimeProblem } from "./Checks.ts"
import { checkCluster, clusterSettings } from "./Cluster.ts"
import { checkConsole, consoleSettings } from "./Console.ts"
import { isRecord } from "./Guards.ts"
import { interpolate } from "./Interpolate.ts"
import { decodeAll } from "./Issues.ts"
import { ConfigError, joinPath, type Problem } from "./Problem.ts"
import {
  defaultSourceName,
  defaults,
  File,
  type FileType,
  type NamedSource,
  type RelayConfig,
  type SinkConfig,
  type Source,
  sourceNamePattern
} from "./Schema.ts"
import { decodeSink } from "./SinkEntry.ts"
import { otlpSettings } from "./Telemetry.ts"
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
        message: "expected a mapping with source (or sources) and sinks (and state, optionally)"
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
    const otlp = otlpSettings(file?.telemetry, env, problems)
    const http =
      isRecord(raw.http) && typeof raw.http.address === "string"
        ? parseAddress(raw.http.address, problems)
        : undefined
    if (http !== undefined && !serverInstalled())
      problems.push({ path: "http", message: serverMissing })
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
    checkSinkSources(raw, sinkNames, problems)
    if (problems.length > 0 || file === undefined) return yield* fail()
    return relayConfig(file, {
      file: options.file,
      baseDir: options.baseDir,
      envApiKey,
      http,
      otlp,
      sinks
    })
  })

/** The file's sources as written, each with the path problems name it by. */
const rawSources = (
  raw: Record<string, any>
): Array<{ path: string; name: string; value: unknown }> =>
  raw.sources !== undefined
    ? isRecord(raw.sources)
      ? Object.entries(raw.sources).map(([name, value]) => ({
          path: joinPath("sources", name),
          name,
          value
        }))
      : []
    : raw.source === undefined
      ? []
      : [{ path: "source", name: defaultSourceName, value: raw.source }]

/** The checks of the file's own keys (not the sinks') that its Schema cannot make. */
const checkTopLevel = (
  raw: Record<string, any>,
  envApiKey: string | undefined,
  problems: Array<Problem>
) => {
  const rawState = isRecord(raw.state) ? raw.state : {}
  checkPatterns(raw.events, "events", problems)
  checkSourceCount(raw, problems)
  for (const { path, name, value } of rawSources(raw)) {
    if (path !== "source" && !sourceNamePattern.test(name))
      problems.push({
        path,
        message: `a source name is lower-case letters, digits and dashes, starting with a letter (at most 63), got ${JSON.stringify(name)}`
      })
    checkSourceType(value, path, problems)
    const rawSource = isRecord(value) ? value : {}
    if (rawSource.type !== "workos") continue
    if (rawSource.apiKey === undefined && envApiKey === undefined)
      problems.push({
        path: `${path}.apiKey`,
        message:
          path === "source"
            ? "no API key: set WORKOS_API_KEY in the environment, or give one here (apiKey: ${MY_WORKOS_KEY})"
            : `no API key: give this source its own (apiKey: \${WORKOS_${name.toUpperCase().replaceAll("-", "_")}_KEY}), or set WORKOS_API_KEY`
      })
    checkPatterns(rawSource.events, `${path}.events`, problems)
    const start = rawSource.start
    if (
      typeof start === "string" &&
      start !== "latest" &&
      start !== "earliest" &&
      !start.startsWith("event_")
    ) {
      const problem = startTimeProblem(start)
      if (problem !== undefined) problems.push({ path: `${path}.start`, message: problem })
    }
  }
  if (typeof rawState.sqlite === "string" && rawState.sqlite.trim() === "") {
    problems.push({ path: "state.sqlite", message: 'expected the path of a SQLite file, got ""' })
  }
  if (rawState.sqlite !== undefined && rawState.postgres !== undefined) {
    problems.push({ path: "state", message: "give either sqlite or postgres, not both" })
  }
}

/** Exactly one of `source:` (one source, named default) and `sources:` (several by name). */
const checkSourceCount = (raw: Record<string, any>, problems: Array<Problem>) => {
  if (raw.source !== undefined && raw.sources !== undefined)
    problems.push({
      path: "sources",
      message:
        "give either source: (one source, named default) or sources: (several, by name), not both"
    })
  else if (raw.source === undefined && raw.sources === undefined)
    problems.push({
      path: "source",
      message:
        "required key is missing (or sources: with several by name); type: demo runs without WorkOS"
    })
  else if (isRecord(raw.sources) && Object.keys(raw.sources).length === 0)
    problems.push({
      path: "sources",
      message: "no sources: add at least one (name: { type: workos, apiKey: ${MY_WORKOS_KEY} })"
    })
}

/** Each sink's `sources:` names sources of the file, each once; an empty list takes nothing. */
const checkSinkSources = (
  raw: Record<string, any>,
  sinkNames: ReadonlyArray<string>,
  problems: Array<Problem>
) => {
  const known = rawSources(raw).map((s) => s.name)
  for (const sink of sinkNames) {
    const entry = isRecord(raw.sinks) ? raw.sinks[sink] : undefined
    const names: unknown = isRecord(entry) ? entry.sources : undefined
    if (!Array.isArray(names)) continue
    const path = `${joinPath("sinks", sink)}.sources`
    if (names.length === 0)
      problems.push({
        path,
        message: "an empty list takes no source; leave the key out for every source"
      })
    names.forEach((name, i) => {
      if (typeof name !== "string") return
      if (names.indexOf(name) !== i)
        problems.push({ path: `${path}[${i}]`, message: `"${name}" is named twice` })
      else if (!known.includes(name)) {
        const [hint] = Text.closest(name, known)
        problems.push({
          path: `${path}[${i}]`,
          message: `unknown source "${name}"${hint === undefined ? "" : `; did you mean "${hint}"?`} (the file's sources: ${known.join(", ") || "none"})`
        })
      }
    })
  }
}

/** A source of a file with no problems, its defaults filled in. */
const sourceConfig = (
  source: NonNullable<FileType["source"]>,
  envApiKey: string | undefined
): Source =>
  source.type === "workos"
    ? {
        type: "workos",
        apiKey: source.apiKey ?? Redacted.make(envApiKey!),
        baseUrl: source.baseUrl ?? "https://api.workos.com",
        events: source.events,
        organization: source.organization,
        start: source.start ?? "latest",
        pollInterval: ms(source.pollInterval, defaults.pollInterval),
        pageSize: num(source.pageSize, defaults.pageSize),
        reReadWindow: ms(source.reReadWindow, defaults.reReadWindow),
        retention: ms(source.retention, defaults.retention),
        onGap: source.onGap ?? "continue",
        maxRequestsPerMinute: num(source.maxRequestsPerMinute, defaults.maxRequestsPerMinute),
        catchUp: {
          enabled: source.catchUp?.enabled ?? defaults.catchUp.enabled,
          minBehind: ms(source.catchUp?.minBehind, defaults.catchUp.minBehind),
          minEvents: num(source.catchUp?.minEvents, defaults.catchUp.minEvents),
          behindEvents: num(source.catchUp?.behindEvents, defaults.catchUp.behindEvents),
          slices: num(source.catchUp?.slices, defaults.catchUp.slices)
        }
      }
    : {
        type: "demo",
        rate: num(source.rate, defaults.demoRate),
        pollInterval: ms(source.pollInterval, 250)
      }

/** The config of a file with no problems, its defaults filled in. */
const relayConfig = (
  file: FileType,
  parts: {
    readonly file: string
    readonly baseDir: string
    readonly envApiKey: string | undefined
    readonly http: RelayConfig["http"]
    readonly otlp: RelayConfig["otlp"]
    readonly sinks: ReadonlyArray<SinkConfig>
  }
): RelayConfig => {
  const leaseTtl = ms(file.state?.leaseTtl, defaults.leaseTtl)
  const sources: Array<NamedSource> =
    file.sources === undefined
      ? [{ ...sourceConfig(file.source!, parts.envApiKey), name: defaultSourceName }]
      : Object.entries(file.sources).map(([name, source]) => ({
          ...sourceConfig(source, parts.envApiKey),
          name
        }))
  const { name: _, ...source } = sources[0]!
  return {
    path: parts.file,
    source: source as Source,
    ...(file.sources === undefined ? {} : { sources }),
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
    ...(parts.otlp === undefined ? {} : { otlp: parts.otlp }),
    shutdownTimeout: ms(file.shutdownTimeout, defaults.shutdownTimeout),
    sinks: parts.sinks
  }
}
