/**
 * Reading an audit log as `audit query` and `audit verify` do: the checks of a query's
 * parameters, and the store opened read-only for one query or one verification. The
 * CLI (`Cli.ts`) and the runner's console both go through here, so a query means the
 * same wherever it is asked.
 */
import * as fs from "node:fs"
import { Text } from "@workos-relay/core"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { errorExitCode } from "effect/Runtime"
import type * as Chain from "./Chain.ts"
import * as Config from "./Config.ts"
import * as PostgresStore from "./PostgresStore.ts"
import type { StoredRecord } from "./Record.ts"
import { openStore } from "./Sink.ts"
import type { Cursor, Query, SchemaTooNew, Shape, StoreError } from "./Store.ts"

/** The command line (or a console request) was wrong: a bad value, a missing store. Exit 2. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly reason: string }> {
  override readonly [errorExitCode] = 2
  override get message(): string {
    return this.reason
  }
}

/** An ISO-8601 time, or a duration ago (`24h`, `7d`). */
export const parseTime = (text: string, now = Date.now()): Date | undefined =>
  Text.parseInstant(text, now)

/** A query as given: text, as a command line or a URL carries it. */
export interface QueryParams {
  /** Patterns; each may hold several separated by commas. */
  readonly types?: ReadonlyArray<string>
  readonly org?: string | undefined
  readonly actor?: string | undefined
  readonly since?: string | undefined
  readonly until?: string | undefined
  readonly mismatched?: boolean | undefined
  readonly limit?: number | undefined
  /** A page's cursor (`formatCursor`): records after it. */
  readonly before?: string | undefined
}

/** A record's place in query order as text (`2026-01-31T12:00:00.000Z~42`), for the next page. */
export const formatCursor = (record: Pick<StoredRecord, "created_at" | "seq">): string =>
  `${record.created_at}~${record.seq}`

export const parseCursor = (text: string): Cursor | undefined => {
  const match = /^(.+)~([1-9][0-9]{0,15})$/.exec(text)
  return match === null ? undefined : { createdAt: match[1]!, seq: Number(match[2]) }
}

/**
 * The store query a command line or a request asks for, or a `UsageError` that names
 * the parameter (`name("since")`: `--since` for the CLI, `since` for the console).
 */
export const parseQuery = (
  params: QueryParams,
  name: (param: string) => string = (param) => `--${param}`,
  now = Date.now()
): Effect.Effect<Query, UsageError> =>
  Effect.gen(function* () {
    const time = (param: string, value: string | undefined) => {
      if (value === undefined) return Effect.succeed(undefined)
      const at = parseTime(value, now)
      return at === undefined
        ? Effect.fail(
            new UsageError({
              reason: `${name(param)}: expected an ISO-8601 time (2026-01-31T00:00:00Z) or a duration ago (24h, 7d), got "${value}"`
            })
          )
        : Effect.succeed(at)
    }
    const since = yield* time("since", params.since)
    const until = yield* time("until", params.until)
    if (since !== undefined && until !== undefined && since.getTime() >= until.getTime())
      return yield* new UsageError({
        reason: `${name("since")} (${since.toISOString()}) must be before ${name("until")} (${until.toISOString()}): no record can match`
      })
    const limit = params.limit
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1))
      return yield* new UsageError({
        reason: `${name("limit")}: expected a positive number, got ${limit}`
      })
    // An empty pattern would match nothing in SQL and everything in the filter: refuse it.
    const given = params.types ?? []
    const types = given.flatMap((t) => t.split(",")).map((t) => t.trim())
    if (types.includes(""))
      return yield* new UsageError({
        reason: `${name("type")}: expected event type patterns such as "dsync.user.*", got an empty one (in ${given.map((t) => JSON.stringify(t)).join(", ")})`
      })
    let before: Cursor | undefined
    if (params.before !== undefined) {
      before = parseCursor(params.before)
      if (before === undefined)
        return yield* new UsageError({
          reason: `${name("before")}: expected the cursor of a page (created_at~seq, as the last page gave it), got "${params.before}"`
        })
    }
    return {
      types,
      ...(params.org !== undefined ? { org: params.org } : {}),
      ...(params.actor !== undefined ? { actor: params.actor } : {}),
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
      ...(params.mismatched === true ? { mismatched: true } : {}),
      ...(limit !== undefined ? { limit } : {}),
      ...(before !== undefined ? { before } : {})
    }
  })

/**
 * The store of an audit-log sink entry as a running relay decoded it (`options`), its
 * relative paths resolved against the config file's folder, as the sink resolves them.
 */
export const sinkStore = (options: unknown, directory: string): Config.Config =>
  Config.resolvePaths(options as Config.Config, directory)

/** Where a config's store is, for people: a file, a folder, a database URL without credentials. */
export const describeStore = (config: Config.Config): string =>
  config.store === "postgres"
    ? PostgresStore.describe(config.url)
    : config.store === "jsonl"
      ? config.directory
      : config.path

/** Reading must not create: a mistyped path is an error, not an empty, valid log. */
export const mustExist = (config: Config.Config): Effect.Effect<void, UsageError> => {
  const where =
    config.store === "jsonl"
      ? config.directory
      : config.store === "postgres"
        ? undefined
        : config.path
  return where === undefined || fs.existsSync(where)
    ? Effect.void
    : Effect.fail(new UsageError({ reason: `no audit log at ${where}` }))
}

/** Runs `use` on the store a config names, opened read-only, then closed. */
const withStoreReadOnly = <A, E>(
  config: Config.Config,
  use: (store: Shape) => Effect.Effect<A, E>
): Effect.Effect<A, E | UsageError | StoreError | SchemaTooNew> =>
  mustExist(config).pipe(
    Effect.andThen(Effect.scoped(Effect.flatMap(openStore(config, { readOnly: true }), use)))
  )

/** The records of the store a config names that match the query. */
export const queryStore = (
  config: Config.Config,
  query: Query
): Effect.Effect<
  { readonly where: string; readonly records: ReadonlyArray<StoredRecord> },
  UsageError | StoreError | SchemaTooNew
> =>
  withStoreReadOnly(config, (store) =>
    Effect.map(store.query(query), (records) => ({ where: store.where, records }))
  )

/** Walks the chain of the store a config names. */
export const verifyStore = (
  config: Config.Config
): Effect.Effect<
  { readonly where: string; readonly report: Chain.Report },
  UsageError | StoreError | SchemaTooNew
> =>
  withStoreReadOnly(config, (store) =>
    Effect.map(store.verify, (report) => ({ where: store.where, report }))
  )

/** A verification's result as `audit verify` prints it. */
export const describeReport = (where: string, report: Chain.Report): string =>
  report.problem === null
    ? `audit log ${where}: OK: ${report.records} record(s) verified from ${
        report.anchor.seq === 0 ? "the start" : `the anchor after record #${report.anchor.seq}`
      }; head hash ${report.headHash}${
        report.newer === undefined
          ? ""
          : `; ${report.newer} newer record(s) after that head (appended meanwhile) not checked`
      }`
    : `audit log ${where}: FAILED (${report.problem.kind}): ${report.problem.message}`
