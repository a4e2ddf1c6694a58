/**
 * A child process for the crash tests: applies the first `committed` events of a
 * history, then the rest in one large batch, printing a line before and after. The
 * test kills it with SIGKILL while the large batch's transaction is open.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { deliverTo, openStore } from "../../src/Sink.ts"
import { history } from "../workload.ts"

const [kind, where, size, committed] = process.argv.slice(2)
const config =
  kind === "postgres"
    ? ({
        store: "postgres",
        url: Redacted.make(where!),
        schema: "crash",
        prefix: "workos_"
      } as const)
    : ({ store: "sqlite", path: where!, prefix: "workos_" } as const)

const events = history(Number(size), 21)
await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* openStore(config)
      yield* deliverTo(store)(events.slice(0, Number(committed)))
      console.log("committed")
      console.log("applying")
      yield* deliverTo(store)(events.slice(Number(committed)))
      console.log("done")
    })
  )
)
