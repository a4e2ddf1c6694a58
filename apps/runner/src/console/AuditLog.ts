/**
 * The console's audit-log page: the config's audit-log sinks, queried and verified with
 * the audit-log package's own code (`@workos-relay/sink-audit-log/Inspect`, what
 * `workos-relay audit query|verify` run), each request opening the store read-only
 * beside the running sink. The package is optional: it is loaded on first use, and a
 * relay without it says how to install it.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Semaphore from "effect/Semaphore"
import type { SinkConfig } from "../config/Schema.ts"
import * as Api from "./Api.ts"
import { Refused } from "./Refused.ts"

type Inspect = typeof import("@workos-relay/sink-audit-log/Inspect")

const install = "npm install @workos-relay/sink-audit-log"
const example = "workos-relay init --sinks audit-log shows one"

let loading: Promise<Inspect | undefined> | undefined

/** The package's Inspect module; undefined when the package is not installed (or too old to have it). */
const load = Effect.promise(() => {
  loading ??= import("@workos-relay/sink-audit-log/Inspect").catch((error: unknown) => {
    const code = (error as { code?: string }).code
    if (code === "ERR_MODULE_NOT_FOUND" || code === "ERR_PACKAGE_PATH_NOT_EXPORTED")
      return undefined
    throw error
  })
  return loading
})

/** The sinks of type `audit-log` (by `type:`, or a `module:` that defines one). */
export const auditSinks = (sinks: ReadonlyArray<SinkConfig>): ReadonlyArray<SinkConfig> =>
  sinks.filter((s) => s.definition.type === "audit-log")

/** `GET audit`: the audit-log sinks, or what to do to have one. */
export const list = (sinks: ReadonlyArray<SinkConfig>): Effect.Effect<Api.AuditSinks> =>
  Effect.map(load, (inspect) => {
    const audit = inspect === undefined ? [] : auditSinks(sinks)
    return {
      installed: inspect !== undefined,
      help:
        audit.length > 0
          ? ""
          : inspect === undefined
            ? `The audit log comes with the audit-log sink, which is not installed: ${install}, then add a sink of type audit-log to the config (${example}) and restart the relay.`
            : `No audit-log sink is configured: add a sink of type audit-log to the config (${example}) and restart the relay.`,
      sinks: audit.map((sink) => {
        const store = inspect!.sinkStore(sink.options, sink.directory)
        return {
          name: sink.name,
          store: store.store ?? "sqlite",
          where: inspect!.describeStore(store)
        }
      })
    }
  })

/** The sink a request names (`label` says where it named it), with the package to read it. */
const choose = (sinks: ReadonlyArray<SinkConfig>, name: string | undefined, label: string) =>
  Effect.map(load, (inspect) => {
    const audit = auditSinks(sinks)
    if (audit.length === 0)
      throw new Refused(
        404,
        `no audit-log sink is configured: add a sink of type audit-log (${example})`
      )
    if (inspect === undefined)
      throw new Refused(503, `the audit-log package cannot be loaded: ${install}`)
    const names = audit.map((s) => s.name).join(", ")
    if (name === undefined) {
      if (audit.length > 1)
        throw new Refused(
          400,
          `${label}: this relay has several audit-log sinks (${names}): choose one`
        )
      return { inspect, sink: audit[0]! }
    }
    const sink = audit.find((s) => s.name === name)
    if (sink === undefined)
      throw new Refused(
        404,
        `${label}: no audit-log sink named "${name}" (audit-log sinks: ${names})`
      )
    return { inspect, sink }
  })

/** A store that cannot be read: not there (503), or its error as it says it. */
const unreadable = (error: { readonly _tag: string; readonly message: string }) =>
  new Refused(error._tag === "UsageError" ? 503 : 500, error.message)

const known = ["sink", "type", "org", "actor", "since", "until", "mismatched", "limit", "before"]
export const maxLimit = 1000

/** The query parameters, or a 400 that names the one that is wrong. */
export const queryParams = (search: URLSearchParams): Api.AuditQueryParams => {
  const unknown = [...new Set(search.keys())].filter((k) => !known.includes(k))
  if (unknown.length > 0)
    throw new Refused(
      400,
      `unknown query parameter ${unknown.map((k) => JSON.stringify(k)).join(", ")} (known: ${known.join(", ")})`
    )
  const raw: Record<string, unknown> = {}
  for (const key of known) {
    const values = search.getAll(key)
    if (values.length === 0) continue
    if (key === "type") {
      raw.type = values
      continue
    }
    if (values.length > 1)
      throw new Refused(400, `query parameter ${key}: given ${values.length} times, expected once`)
    if (values[0] === "")
      throw new Refused(400, `query parameter ${key}: empty (leave it out to not filter by it)`)
    raw[key] = values[0]
  }
  try {
    return Schema.decodeUnknownSync(Api.AuditQueryParams)(raw)
  } catch (e) {
    throw new Refused(400, `bad query parameters: ${(e as Error).message}`)
  }
}

const parseLimit = (text: string | undefined): number => {
  if (text === undefined) return 100
  const limit = /^[0-9]{1,6}$/.test(text) ? Number(text) : Number.NaN
  if (!(limit >= 1 && limit <= maxLimit))
    throw new Refused(
      400,
      `query parameter limit: expected a whole number from 1 to ${maxLimit}, got "${text}"`
    )
  return limit
}

/** `GET audit/query?...`: one page of records, newest first, and the cursor of the next. */
export const query = (
  sinks: ReadonlyArray<SinkConfig>,
  search: URLSearchParams,
  who: string
): Effect.Effect<Api.AuditPage> =>
  Effect.gen(function* () {
    const params = queryParams(search)
    const limit = parseLimit(params.limit)
    const { inspect, sink } = yield* choose(sinks, params.sink, "query parameter sink")
    // One more than asked: whether there is a next page, without a second query.
    const q = yield* inspect
      .parseQuery(
        {
          types: params.type ?? [],
          org: params.org,
          actor: params.actor,
          since: params.since,
          until: params.until,
          mismatched: params.mismatched === "true",
          limit: limit + 1,
          before: params.before
        },
        (param) => `query parameter ${param}`
      )
      .pipe(Effect.mapError((e) => new Refused(400, e.reason)))
    const { where, records } = yield* inspect
      .queryStore(inspect.sinkStore(sink.options, sink.directory), q)
      .pipe(Effect.mapError(unreadable))
    const page = records.slice(0, limit)
    const next = records.length > limit ? inspect.formatCursor(page.at(-1)!) : null
    const asked = [...search].filter(([k]) => k !== "sink").map(([k, v]) => `${k}=${v}`)
    yield* Effect.logInfo(
      `console (${who}): audit query of sink ${sink.name} (${asked.join(" ") || "everything"}): ${page.length} record(s)${next === null ? "" : ", more after"}`
    )
    return { sink: sink.name, where, records: page, next }
  }).pipe(Effect.orDie)

/** One chain walk at a time: it reads every record, and an impatient operator clicks again. */
const verifying = Semaphore.makeUnsafe(1)

/** `POST audit/verify`: the chain walk of `audit verify`, as a result to show. */
export const verify = (
  sinks: ReadonlyArray<SinkConfig>,
  body: unknown,
  who: string
): Effect.Effect<Api.AuditVerify> =>
  Effect.gen(function* () {
    const request = yield* Schema.decodeUnknownEffect(Api.AuditVerifyRequest)(body).pipe(
      Effect.mapError((e) => new Refused(400, `expected { "sink": "name" } (or {}): ${e.message}`))
    )
    const { inspect, sink } = yield* choose(sinks, request.sink, "sink")
    const { where, report } = yield* inspect
      .verifyStore(inspect.sinkStore(sink.options, sink.directory))
      .pipe(Semaphore.withPermit(verifying), Effect.mapError(unreadable))
    const summary = inspect.describeReport(where, report)
    yield* report.problem === null
      ? Effect.logInfo(`console (${who}): verified sink ${sink.name}: ${summary}`)
      : Effect.logWarning(`console (${who}): verified sink ${sink.name}: ${summary}`)
    return {
      sink: sink.name,
      where,
      ok: report.problem === null,
      records: report.records,
      anchorSeq: report.anchor.seq,
      headHash: report.headHash,
      newer: report.newer ?? null,
      problem: report.problem,
      summary
    }
  }).pipe(Effect.orDie)
