/**
 * A child process for the crash tests: appends one small batch, then one very large
 * batch to the store in argv, printing a line after each. The test kills it with
 * SIGKILL while the large batch's transaction is open.
 */
import * as Effect from "effect/Effect"
import * as Record from "../../src/Record.ts"
import * as Sink from "../../src/Sink.ts"
import { events } from "../fixtures.ts"

const [kind, where, size] = process.argv.slice(2)
const config =
  kind === "postgres"
    ? ({ store: "postgres", url: (await import("effect/Redacted")).make(where!) } as const)
    : kind === "jsonl"
      ? ({ store: "jsonl", directory: where!, gzip: false } as const)
      : ({ store: "sqlite", path: where! } as const)

await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* Sink.openStore(config)
      yield* store.append(events(50).map(Record.fromEvent))
      console.log("committed")
      const large = events(Number(size), 51).map(Record.fromEvent)
      console.log("appending")
      yield* store.append(large)
      console.log("done")
    })
  )
)
