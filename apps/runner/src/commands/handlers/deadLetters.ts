/** What `workos-relay dead-letters list|retry|drop` do (their flags: ../deadLetters.ts). */
import { type Sink, Text } from "@workos-relay/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { load } from "../../config/Load.ts"
import { type RelayConfig, sourcesOfSink } from "../../config/Schema.ts"
import { type Outcome, retryLetters } from "../../deadLetters/Retry.ts"
import * as Runner from "../../Runner.ts"
import * as StateStore from "../../StateStore.ts"
import { missingStore, out, RunFailed, table, UsageError, withLogs, withStore } from "../shared.ts"

/**
 * A `--sink` that names no sink of the config and has no dead letters is most likely
 * misspelt. (A sink removed from the config can still have dead letters: those are
 * listed, retried and dropped as usual.)
 */
const checkDeadLetterSink = (config: RelayConfig, sink: Option.Option<string>, found: number) => {
  if (Option.isNone(sink) || found > 0 || config.sinks.some((s) => s.name === sink.value))
    return Effect.void
  const names = config.sinks.map((s) => s.name)
  const [hint] = Text.closest(sink.value, names)
  return Effect.fail(
    new UsageError({
      reason: `--sink: no sink named ${sink.value} in the config${hint === undefined ? "" : `; did you mean ${hint}?`} (sinks: ${names.join(", ")}), and no dead letters of it in the store`
    })
  )
}

const parseIds = (ids: Option.Option<string>) =>
  Option.isNone(ids)
    ? Effect.succeed(undefined)
    : Effect.forEach(ids.value.split(","), (s) =>
        /^\d+$/.test(s.trim())
          ? Effect.succeed(Number(s.trim()))
          : Effect.fail(new UsageError({ reason: `--id: expected numbers, got "${s}"` }))
      )

/** `--id`s that name no dead letter (of `--sink`, when given) are most likely a typo. */
const checkIds = (ids: ReadonlyArray<number> | undefined, found: ReadonlyArray<{ id: number }>) => {
  const missing = (ids ?? []).filter((id) => !found.some((l) => l.id === id))
  return missing.length === 0
    ? Effect.void
    : Effect.fail(
        new UsageError({
          reason: `--id: no dead letter with id ${missing.join(", ")}${found.length > 0 ? "; nothing was changed" : ""} (dead-letters list shows the ids)`
        })
      )
}

export const list = ({
  config: file,
  sink,
  limit
}: {
  readonly config: string
  readonly sink: Option.Option<string>
  readonly limit: number
}) =>
  Effect.gen(function* () {
    if (limit < 1)
      return yield* Effect.fail(
        new UsageError({ reason: `--limit: expected a whole number of at least 1, got ${limit}` })
      )
    const config = yield* load(file)
    const missing = missingStore(config)
    if (missing !== undefined) {
      yield* checkDeadLetterSink(config, sink, 0)
      return yield* out(`no dead letters: ${missing}`)
    }
    const letters = yield* withStore(config, (s) =>
      s.deadLetters({ sink: Option.getOrUndefined(sink), limit })
    )
    yield* checkDeadLetterSink(config, sink, letters.length)
    if (letters.length === 0) return yield* out("no dead letters")
    // Several sources: each letter says its source (a file's one source: as before).
    const labelled = Runner.isLabelled(config)
    yield* out(
      table([
        [
          "id",
          "sink",
          ...(labelled ? ["source"] : []),
          "event",
          "type",
          "attempts",
          "last failure",
          "error"
        ],
        ...letters.map((l) => [
          String(l.id),
          l.sink,
          ...(labelled ? [l.source] : []),
          l.eventId,
          l.eventType,
          String(l.attempts),
          new Date(l.lastFailure).toISOString(),
          l.error.slice(0, 120)
        ])
      ])
    )
  })

export const retry = ({
  config: file,
  sink,
  id
}: {
  readonly config: string
  readonly sink: Option.Option<string>
  readonly id: Option.Option<string>
}) =>
  Effect.gen(function* () {
    const config = yield* load(file)
    const ids = yield* parseIds(id)
    const missing = missingStore(config)
    if (missing !== undefined) {
      yield* checkDeadLetterSink(config, sink, 0)
      yield* checkIds(ids, [])
      return yield* out(`no dead letters: ${missing}`)
    }
    const summary = yield* retryAll(config, sink, ids).pipe(withLogs(config))
    yield* out(
      `retried: ${summary.delivered} delivered and removed, ${summary.failed} still dead-lettered`
    )
    if (summary.failed > 0)
      return yield* Effect.fail(
        new RunFailed({ reason: `${summary.failed} dead letter(s) could not be delivered` })
      )
  })

/** Retries the dead letters chosen (by `--sink`, by `--id`): how many went, how many did not. */
const retryAll = (
  config: RelayConfig,
  sink: Option.Option<string>,
  ids: ReadonlyArray<number> | undefined
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = Context.get(
        yield* Layer.build(StateStore.layer(config.state)),
        StateStore.StateStore
      )
      const letters = yield* store.deadLetters({ sink: Option.getOrUndefined(sink), ids })
      yield* checkDeadLetterSink(config, sink, letters.length)
      yield* checkIds(ids, letters)
      const made = yield* Runner.makeSinks(config.sinks, {
        workosOf: (sink) => Runner.workosContext(sourcesOfSink(config, sink))
      })
      const outcomes = yield* retryLetters(
        store,
        {
          lanes: made.flatMap((m) =>
            m.sink === undefined
              ? []
              : [Runner.laneSpec(m as Runner.MadeSink & { sink: Sink.Sink })]
          ),
          unavailable: new Map(made.map((m) => [m.config.name, m.error ?? ""]))
        },
        letters
      )
      yield* report(letters, outcomes)
      const delivered = outcomes.filter((o) => o.delivered).length
      return { delivered, failed: outcomes.length - delivered }
    })
  )

export const drop = ({
  config: file,
  sink,
  id,
  all
}: {
  readonly config: string
  readonly sink: Option.Option<string>
  readonly id: Option.Option<string>
  readonly all: boolean
}) =>
  Effect.gen(function* () {
    const config = yield* load(file)
    const ids = yield* parseIds(id)
    if ((ids === undefined) === !all)
      return yield* Effect.fail(
        new UsageError({ reason: "dead-letters drop: give either --id <ids> or --all" })
      )
    const missing = missingStore(config)
    if (missing !== undefined) {
      yield* checkDeadLetterSink(config, sink, 0)
      yield* checkIds(ids, [])
      return yield* out(`no dead letters: ${missing}`)
    }
    const dropped = yield* withStore(config, (s) =>
      s.deadLetters({ sink: Option.getOrUndefined(sink), ids }).pipe(
        Effect.tap((letters) => checkDeadLetterSink(config, sink, letters.length)),
        Effect.tap((letters) => checkIds(ids, letters)),
        Effect.flatMap((letters) => s.dropDeadLetters(letters.map((l) => l.id)))
      )
    )
    yield* out(`dropped ${dropped} dead letter(s)`)
  })

/** One line per letter still failing; a sink that stays down is named once. */
const report = (letters: ReadonlyArray<StateStore.DeadLetter>, outcomes: ReadonlyArray<Outcome>) =>
  Effect.gen(function* () {
    const skipped = new Map<string, number>()
    for (const [i, o] of outcomes.entries()) {
      const sink = letters[i]!.sink
      if (o.skipped === true) skipped.set(sink, (skipped.get(sink) ?? 0) + 1)
      else if (!o.delivered) yield* out(`  ${o.id}: still failing: ${o.reason}`)
      if (o.sinkDown === true)
        yield* out(
          `  sink ${sink} is still failing: not trying its other dead letters in this run (they stay)`
        )
    }
    for (const [name, n] of skipped)
      yield* out(`  sink ${name}: ${n} dead letter(s) not tried, left in place`)
  })
