/**
 * `workos-relay validate`: check a config file, and with --check-connections what it points at.
 * What the command does; its flags and help are in ../validate.ts, which loads
 * this module only when the command runs (`--help` does without it).
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { load } from "../../config/Load.ts"
import { type RelayConfig, sourcesOf, sourcesOfSink } from "../../config/Schema.ts"
import { withoutCredentials } from "../../config/Values.ts"
import * as Pipeline from "../../Pipeline.ts"
import * as Runner from "../../Runner.ts"
import { errorLogsOnly, interactiveClient, out, RunFailed, withStore } from "../shared.ts"

export const validate = ({
  config: file,
  checkConnections
}: {
  readonly config: string
  readonly checkConnections: boolean
}) =>
  errorLogsOnly(
    Effect.gen(function* () {
      const config = yield* load(file)
      yield* out(
        `${file}: ok (${config.sinks.length} sink(s): ${config.sinks.map((s) => `${s.name} (${s.type})`).join(", ")})`
      )
      if (config.otlp !== undefined)
        yield* out(
          `  OpenTelemetry: ${config.otlp.protocol} to ${withoutCredentials(config.otlp.endpoint)} as ${config.otlp.serviceName} (from the ${config.otlp.from === "config" ? "config's telemetry.otlp" : "OTEL_* environment"})`
        )
      if (!checkConnections) return
      const problems = yield* connectionProblems(config)
      if (problems.length > 0)
        return yield* Effect.fail(
          new RunFailed({ reason: `${problems.length} connection check(s) failed` })
        )
    })
  )

/** Reaches the state store, WorkOS and every sink, a line each: what failed. */
const connectionProblems = (config: RelayConfig) =>
  Effect.gen(function* () {
    const problems: Array<string> = []
    const check = (label: string, effect: Effect.Effect<unknown, unknown, any>) =>
      Effect.result(Effect.scoped(effect as Effect.Effect<unknown, unknown, never>)).pipe(
        Effect.flatMap((r) => {
          if (Result.isSuccess(r)) return out(`  ok    ${label}`)
          const reason =
            Pipeline.rejectionOf(r.failure)?.message ??
            (r.failure as any)?.message ??
            String(r.failure)
          problems.push(`${label}: ${reason}`)
          return out(`  FAIL  ${label}: ${reason}`)
        })
      )
    yield* check(
      `state store (${config.state.type})`,
      withStore(config, (s) => s.lease())
    )
    // Each of several sources with its own key: "WorkOS (source prod)".
    const labelled = Runner.isLabelled(config)
    for (const source of sourcesOf(config))
      yield* check(
        labelled ? `WorkOS (source ${source.name})` : "WorkOS",
        Runner.openSource(
          source,
          config.sinks.filter((sink) =>
            sourcesOfSink(config, sink).some((s) => s.name === source.name)
          ),
          interactiveClient
        ).pipe(Effect.flatMap((s) => s.client.listEvents({ limit: 1 })))
      )
    yield* Effect.scoped(
      Effect.gen(function* () {
        for (const m of yield* Runner.makeSinks(config.sinks, { checkOnly: true })) {
          const label = `sink ${m.config.name}`
          if (m.sink === undefined) {
            problems.push(`${label}: ${m.error}`)
            yield* out(`  FAIL  ${label}: ${m.error}`)
          } else if (m.sink.check === undefined) {
            yield* out(
              `  ok    ${label} (made; sink type ${m.config.type} has no connection check)`
            )
          } else {
            yield* check(label, m.sink.check)
          }
        }
      })
    )
    return problems
  })
