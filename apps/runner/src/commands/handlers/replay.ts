/**
 * `workos-relay replay`: deliver a time range again, without moving live cursors.
 * What the command does; its flags and help are in ../replay.ts, which loads
 * this module only when the command runs (`--help` does without it).
 */
import { Text } from "@workos-relay/core"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { load } from "../../config/Load.ts"
import { type RelayConfig, type SinkConfig, sourcesOf, sourcesOfSink } from "../../config/Schema.ts"
import { Metrics } from "../../Observability.ts"
import * as Pipeline from "../../Pipeline.ts"
import * as Runner from "../../Runner.ts"
import * as StateStore from "../../StateStore.ts"
import { out, RunFailed, table, UsageError, withLogs } from "../shared.ts"
import { stopOnSignals } from "./running.ts"

export const replay = ({
  config: file,
  since,
  until,
  sink
}: {
  readonly config: string
  readonly since: string
  readonly until: Option.Option<string>
  readonly sink: Option.Option<string>
}) =>
  Effect.gen(function* () {
    const config = yield* load(file)
    const from = yield* parseTime("since", since)
    const to = Option.isSome(until) ? yield* parseTime("until", until.value) : Date.now()
    if (to <= from)
      return yield* Effect.fail(
        new UsageError({
          reason: `--until ${new Date(to).toISOString()} is not after --since ${new Date(from).toISOString()}: no event can be in that range`
        })
      )
    const sinks = yield* chooseSinks(config, sink)
    const { reports, stopped } = yield* replayRange(config, sinks, from, to).pipe(withLogs(config))
    yield* out(
      `Replayed events created from ${new Date(from).toISOString()} to ${new Date(to).toISOString()} (live checkpoints untouched):`
    )
    yield* out(
      table([
        ["sink", "delivered", "dead-lettered", "error"],
        ...reports.map((r) => [r.name, String(r.delivered), String(r.deadLettered), r.error ?? ""])
      ])
    )
    if (stopped)
      return yield* Effect.fail(
        new RunFailed({
          reason:
            "replay stopped by a signal before the end of its range; run it again to deliver the rest"
        })
      )
  })

/**
 * Delivers the events created from `from` to `to` to `sinks`; `stopped` when a signal
 * ended it first.
 */
const replayRange = (
  config: RelayConfig,
  sinks: ReadonlyArray<SinkConfig>,
  from: number,
  to: number
) =>
  Effect.gen(function* () {
    const metrics = new Metrics()
    let stopped = false
    const reports = yield* Effect.scoped(
      Effect.gen(function* () {
        const stop = yield* stopOnSignals
        yield* Deferred.await(stop).pipe(
          Effect.andThen(
            Effect.sync(() => {
              stopped = true
            })
          ),
          Effect.forkScoped
        )
        const store = Context.get(
          yield* Layer.build(StateStore.layer(config.state)),
          StateStore.StateStore
        )
        const made = yield* Runner.makeSinks(sinks)
        const labelled = Runner.isLabelled(config)
        const reports: Array<Pipeline.LaneReport> = []
        // Several sources: each in turn, to the chosen sinks that take it.
        for (const source of sourcesOf(config)) {
          const lanes = made
            .filter(
              (m) =>
                m.sink !== undefined &&
                sourcesOfSink(config, m.config).some((s) => s.name === source.name)
            )
            .map((m) =>
              Runner.sourceLane(Runner.laneSpec(m as any), source.name, labelled, metrics)
            )
          if (lanes.length === 0 || stopped) continue
          const opened = yield* Runner.openSource(
            source,
            sinks.filter((sink) => sourcesOfSink(config, sink).some((s) => s.name === source.name))
          )
          reports.push(
            ...(yield* Pipeline.run({
              lanes,
              source: opened.source,
              store,
              token: () => null,
              metrics,
              start: { since: new Date(from).toISOString() },
              mode: { _tag: "replay", until: to },
              stop,
              shutdownTimeout: config.shutdownTimeout
            }))
          )
        }
        return reports
      })
    )
    return { reports, stopped }
  })

const parseTime = (flag: string, value: string) => {
  const t = Text.parseInstant(value)
  return t === undefined
    ? Effect.fail(
        new UsageError({
          reason: `--${flag}: expected an ISO-8601 time such as 2026-11-01T00:00:00Z or a duration ago (24h, 7d), got "${value}"`
        })
      )
    : Effect.succeed(t.getTime())
}

const chooseSinks = (config: RelayConfig, names: Option.Option<string>) => {
  if (Option.isNone(names)) return Effect.succeed(config.sinks)
  const wanted = names.value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
  const known = config.sinks.map((s) => s.name).join(", ")
  if (wanted.length === 0)
    return Effect.fail(
      new UsageError({ reason: `--sink: give one or more sink names (sinks: ${known})` })
    )
  const unknown = wanted.filter((n) => !config.sinks.some((s) => s.name === n))
  return unknown.length > 0
    ? Effect.fail(
        new UsageError({
          reason: `--sink: no sink named ${unknown.join(", ")} in the config (sinks: ${known})`
        })
      )
    : Effect.succeed(config.sinks.filter((s) => wanted.includes(s.name)))
}
