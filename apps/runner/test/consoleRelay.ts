/** A relay with the operator console on, for the console's API and browser tests. */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { WorkOSStandIn } from "@workos-relay/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Config from "../src/Config.ts"
import { Metrics } from "../src/Observability.ts"
import * as Runner from "../src/Runner.ts"
import { fixtures, recorded, tempDir, waitUntil } from "./helpers.ts"

/** The types the `switch` sink rejects at first: each of them dead-letters. */
export const rejectedTypes = ["user.created", "organization.created"]

/**
 * A stand-in with two events of every type; sinks `all` (records everything) and
 * `switch` (rejects `rejectedTypes` while its reject file lists them). Waits until
 * every event is done with by both. `moreSinks` are added as given.
 */
export const startConsoleRelay = (
  console: Record<string, unknown> = {},
  address = "127.0.0.1:0",
  moreSinks: Record<string, Record<string, unknown>> = {}
) =>
  Effect.gen(function* () {
    const standIn = yield* WorkOSStandIn.make({ events: 222 })
    const dir = tempDir("relay-console-")
    const rejectFile = Path.join(dir, "reject.txt")
    Fs.writeFileSync(rejectFile, rejectedTypes.join("\n"))
    const logs = { all: Path.join(dir, "all.log"), switch: Path.join(dir, "switch.log") }
    const config = yield* Config.decode(
      {
        source: {
          type: "workos",
          apiKey: standIn.apiKey,
          baseUrl: standIn.url,
          start: "earliest",
          pollInterval: "100ms"
        },
        state: { sqlite: Path.join(dir, "state.db") },
        http: { address },
        console,
        shutdownTimeout: "2s",
        sinks: {
          all: { module: "./recording-sink.mjs", path: logs.all },
          switch: { module: "./switch-sink.mjs", path: logs.switch, rejectFile },
          ...moreSinks
        }
      },
      { file: "test", baseDir: fixtures, env: {} }
    )
    const stop = yield* Deferred.make<void>()
    const metrics = new Metrics()
    const listening = yield* Deferred.make<number>()
    const running = yield* Runner.run(config, {
      stop,
      metrics,
      onListening: (port) => Deferred.doneUnsafe(listening, Effect.succeed(port))
    }).pipe(Effect.forkScoped)
    // A runner that fails before it listens fails the test at once, saying why.
    const port = yield* Effect.raceFirst(
      Deferred.await(listening),
      Fiber.join(running).pipe(
        Effect.flatMap(() => Effect.die(new Error("the runner ended before it listened")))
      )
    )
    const rejected = standIn.events().filter((e) => rejectedTypes.includes(e.event))
    yield* waitUntil(
      "every event done with",
      () =>
        recorded(logs.all).length === standIn.size() &&
        recorded(logs.switch).length === standIn.size() - rejected.length &&
        metrics.sink("switch").deadLettered === rejected.length
    )
    return {
      standIn,
      metrics,
      logs,
      rejectFile,
      rejected,
      base: `http://127.0.0.1:${port}`,
      stop: Deferred.succeed(stop, undefined).pipe(Effect.andThen(Fiber.join(running)))
    }
  })
