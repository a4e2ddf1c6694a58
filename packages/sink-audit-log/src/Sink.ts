/**
 * The `audit-log` sink: every event becomes an audit record, appended to the store
 * in one transaction per batch. Re-delivered events are skipped (the store is
 * idempotent on the event id), so each event is kept exactly once.
 *
 * The sink is raw (`Sink.Definition.raw`): an event whose payload breaks the spec is
 * recorded as WorkOS sent it, with where it breaks the spec (`schema_mismatch`). Only
 * one without a `created_at` that is a time is rejected: a record needs one.
 */
import * as fs from "node:fs"
import { type Event, Sink } from "@workos-relay/core"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Config from "./Config.ts"
import * as Digest from "./Digest.ts"
import * as JsonlStore from "./JsonlStore.ts"
import * as PostgresStore from "./PostgresStore.ts"
import * as Record from "./Record.ts"
import * as SqliteStore from "./SqliteStore.ts"
import { type PruneResult, type SchemaTooNew, type Shape, Store, type StoreError } from "./Store.ts"

/**
 * Opens the store a config names; closed with the scope. `readOnly` (`audit verify`,
 * `audit query`) creates, migrates and repairs nothing; the sink's open does all three.
 */
export const openStore = (
  config: Config.Config,
  options: { readonly readOnly?: boolean } = {}
): Effect.Effect<Shape, StoreError | SchemaTooNew, Scope.Scope> => {
  const readOnly = options.readOnly === true
  switch (config.store) {
    case "postgres":
      return PostgresStore.makeFromUrl({ url: config.url, readOnly })
    case "jsonl":
      return JsonlStore.make({ directory: config.directory, gzip: config.gzip, readOnly })
    default:
      return SqliteStore.make({ path: config.path, readOnly })
  }
}

/** The `Store` service for a config. */
export const layer = (config: Config.Config): Layer.Layer<Store, StoreError | SchemaTooNew> =>
  Layer.effect(Store, openStore(config))

/** How often retention runs while the sink is up (it also runs at start). */
export const retentionInterval = Duration.hours(1)

/** Writes signed digests (see Digest): `head` when the head moved, `retention` before a cut. */
export interface DigestKeeper {
  readonly head: Effect.Effect<void>
  /** Signs the note of a cut retention is about to make; fails when it cannot (then nothing may be cut). */
  readonly retention: (cut: PruneResult) => Effect.Effect<void, DigestNoteFailed>
}

/** The signed note of a retention cut could not be written: the cut is not made. */
export class DigestNoteFailed extends Data.TaggedError("DigestNoteFailed")<{
  readonly message: string
}> {}

/**
 * Starts signing digests of `store` into `config.directory`: every `interval` and when
 * the scope closes (shutdown). A digest that cannot be written is logged, never fatal.
 */
export const keepDigests = (
  store: Shape,
  config: Config.Digests
): Effect.Effect<DigestKeeper, Sink.SinkFatal, Scope.Scope> =>
  Effect.gen(function* () {
    const key = yield* Effect.try({
      try: () =>
        Digest.privateKeyFrom(
          config.privateKey !== undefined
            ? Redacted.value(config.privateKey)
            : fs.readFileSync(config.privateKeyFile!, "utf8")
        ),
      catch: (e) =>
        new Sink.SinkFatal({
          reason: `digests: ${config.privateKeyFile === undefined ? "privateKey" : `privateKeyFile ${config.privateKeyFile}`}: ${(e as Error).message}`
        })
    })
    const writer = yield* Effect.try({
      try: () => Digest.writer(config.directory, key),
      catch: (e) =>
        new Sink.SinkFatal({
          reason: `digests: cannot use the folder ${config.directory}: ${(e as Error).message}`
        })
    })
    const write = (kind: "head") =>
      store.head.pipe(
        Effect.flatMap((state) =>
          state === undefined
            ? Effect.logWarning(`audit log ${store.where}: no head to sign a digest of`)
            : Effect.try({
                try: () => writer.write(kind, state),
                catch: (e) => e
              }).pipe(
                Effect.tap((d) =>
                  d === undefined
                    ? Effect.void
                    : Effect.logDebug(
                        `audit log ${store.where}: digest ${d.n} (${kind}) signed at #${d.seq}`
                      )
                ),
                Effect.asVoid
              )
        ),
        Effect.catch((e) =>
          Effect.logError(
            `audit log ${store.where}: writing a signed digest to ${config.directory} failed: ${e instanceof Error ? e.message : String(e)}`
          )
        )
      )
    const head = write("head")
    const every = Config.parseRetention(config.interval)!
    // One at start (the head the sink found), then every interval.
    yield* head
    yield* Effect.sleep(every).pipe(Effect.andThen(head), Effect.forever, Effect.forkScoped)
    // At shutdown: the last head the sink wrote.
    yield* Effect.addFinalizer(() => head)
    // The note announces the cut: the anchor the chain will start from, and what goes.
    const retention = (cut: PruneResult) =>
      store.head.pipe(
        Effect.flatMap((state) =>
          state === undefined
            ? Effect.fail(new Error("the store has no head to sign a note of"))
            : Effect.try({
                try: () =>
                  writer.write(
                    "retention",
                    { anchor: cut.anchor, head: state.head },
                    { count: cut.deleted, from: state.anchor }
                  ),
                catch: (e) => e
              })
        ),
        Effect.mapError(
          (e) =>
            new DigestNoteFailed({
              message: `writing the signed retention note to ${config.directory} failed, so nothing was deleted: ${e instanceof Error ? e.message : String(e)}`
            })
        ),
        Effect.asVoid
      )
    return { head, retention }
  })

/** Deletes records older than the retention, now and then every hour; failures are logged, never fatal. */
export const keepRetention = (
  store: Shape,
  retention: Duration.Duration,
  options: {
    readonly digests?: DigestKeeper
    /** Called after each pass (tests wait for it rather than sleep). */
    readonly onPass?: (result: { readonly deleted: number }) => void
    /** Called with the message of a pass that failed (logged, then retried next pass). */
    readonly onFailure?: (message: string) => void
  } = {}
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const before = new Date(Date.now() - Duration.toMillis(retention))
    if (options.digests === undefined) return yield* store.prune(before)
    // A cut is provable only with a signed note of what it removes, written first: a crash
    // between the two leaves a note of a cut not yet made (verify accepts it; the next
    // pass makes it), never a cut without a note.
    const plan = yield* store.prune(before, { plan: true })
    if (plan.deleted === 0) return plan
    yield* options.digests.retention(plan)
    return yield* store.prune(before, { upTo: plan.anchor.seq })
  }).pipe(
    Effect.tap((r) =>
      r.deleted > 0
        ? Effect.logInfo(
            `audit log ${store.where}: retention deleted ${r.deleted} record(s); chain anchored at #${r.anchor.seq}`
          )
        : Effect.void
    ),
    Effect.tap((r) =>
      Effect.logDebug(`audit log ${store.where}: retention pass done (${r.deleted} deleted)`)
    ),
    Effect.tap((r) => Effect.sync(() => options.onPass?.(r))),
    Effect.catch((e) =>
      Effect.logWarning(`audit log retention: ${e.message}`).pipe(
        Effect.andThen(Effect.sync(() => options.onFailure?.(e.message)))
      )
    ),
    Effect.repeat(Schedule.spaced(retentionInterval)),
    Effect.forkScoped,
    Effect.andThen(
      Effect.logDebug(
        `audit log ${store.where}: retention started (keeping ${Duration.format(retention)}; a pass now, then every ${Duration.format(retentionInterval)})`
      )
    )
  )

/** Appends a batch's records; a record that cannot be kept (`Record.unkeepable`) is rejected, the rest appended. */
const deliverTo =
  (store: Shape) =>
  (batch: ReadonlyArray<Event.Any>): Effect.Effect<ReadonlyArray<Sink.Outcome>, StoreError> => {
    const records = batch.map(Record.fromEvent)
    const problems = records.map(Record.unkeepable)
    if (problems.every((p) => p === undefined))
      return store.append(records).pipe(Effect.as(records.map(() => Sink.delivered)))
    return store
      .append(records.filter((_, i) => problems[i] === undefined))
      .pipe(Effect.as(problems.map((p) => (p === undefined ? Sink.delivered : Sink.rejected(p)))))
  }

export const definition = Sink.define({
  type: "audit-log",
  // It archives events as WorkOS sent them: one that breaks the spec too, marked.
  raw: true,
  config: Config.Config,
  make: (config, context) =>
    Effect.gen(function* () {
      // Never start a second, empty log beside one a relative path used to name.
      const leftBehind = Config.storeLeftBehind(config, context.directory)
      if (leftBehind !== undefined) {
        return yield* new Sink.SinkFatal({
          reason: `the audit log is at ${leftBehind.was}, relative to the working directory, but a relative path is now relative to the config file's folder (${leftBehind.now}): move it there, or give its absolute path`
        })
      }
      const store = yield* openStore(Config.resolvePaths(config, context.directory)).pipe(
        // The runner names the sink ("sink audit could not start: ..."): the reason does not.
        Effect.mapError((e) => new Sink.SinkFatal({ reason: e.message }))
      )
      const resolved = Config.resolvePaths(config, context.directory)
      // A sink made only to be checked signs and deletes nothing.
      const digests =
        resolved.digests !== undefined && context.checkOnly !== true
          ? yield* keepDigests(store, resolved.digests)
          : undefined
      if (config.retention !== undefined && context.checkOnly !== true) {
        yield* keepRetention(store, Config.parseRetention(config.retention)!, {
          ...(digests === undefined ? {} : { digests })
        })
      }
      return {
        batch: { maxEvents: 2000, maxWait: "1 second" },
        deliver: (batch: ReadonlyArray<Event.Any>) =>
          deliverTo(store)(batch).pipe(
            // A damaged store (its chain row gone) fails every retry: stop, saying why.
            Effect.mapError((e) =>
              e.fatal === true
                ? new Sink.SinkFatal({ reason: e.message })
                : new Sink.SinkUnavailable({ reason: e.message })
            )
          ),
        // Reads one record: the store is there and answers (Postgres: a round trip).
        check: store.query({ limit: 1 }).pipe(
          Effect.asVoid,
          Effect.mapError((e) => new Sink.SinkUnavailable({ reason: e.message }))
        )
      }
    })
})
