/**
 * `dead-letters retry` against a sink that is still down: one short round for the
 * first letter, then the sink is left alone for the rest of the run, said so, and
 * every letter stays. Attempts are counted at the sink, one line per call.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as StateStore from "../src/StateStore.ts"
import { tempDir } from "./helpers.ts"

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")
const sinkModule = Path.join(import.meta.dirname, "fixtures", "recording-sink.mjs")

const cli = (cwd: string, args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ["--conditions=@workos-relay/source", bin, ...args], {
      cwd,
      env: { ...process.env, WORKOS_API_KEY: "sk_test_retry" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => {
      stdout += d
    })
    child.stderr.on("data", (d) => {
      stderr += d
    })
    child.on("exit", (code) => resolve({ code, stdout, stderr }))
  })

const withStore = <A>(dir: string, f: (store: StateStore.Service) => Effect.Effect<A, unknown>) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const store = yield* StateStore.sqlite(Path.join(dir, "state.db"))
        return yield* f(store)
      })
    )
  )

describe("dead-letters retry against a sink still down", () => {
  it("300 letters: one short round, then the sink is left alone; every letter stays", async () => {
    const dir = tempDir("relay-retry-down-")
    const attempts = Path.join(dir, "attempts.log")
    const letters = Array.from({ length: 300 }, (_, i) => {
      const id = `event_${String(i).padStart(4, "0")}`
      return {
        eventId: id,
        eventType: "dsync.user.created",
        event: JSON.stringify({
          id,
          event: "dsync.user.created",
          data: {},
          created_at: "2026-01-01T00:00:00.000Z"
        }),
        error: "gave up after 3 attempts: down",
        attempts: 3,
        firstFailure: 1,
        lastFailure: 2
      }
    })
    await withStore(dir, (store) => store.addDeadLetters("rec", letters, null))
    Fs.writeFileSync(
      Path.join(dir, "relay.yaml"),
      `source:
  type: workos
  apiKey: \${WORKOS_API_KEY}
state:
  sqlite: ./state.db
sinks:
  rec:
    module: ${JSON.stringify(sinkModule)}
    path: ./rec.log
    attemptsPath: ${JSON.stringify(attempts)}
    unavailable: true
    retry:
      initialDelay: 200ms
      maxDuration: 1s
`
    )
    const result = await cli(dir, ["dead-letters", "retry", "-c", "relay.yaml"])
    expect(result.code, result.stderr).toBe(1)
    expect(result.stdout).toContain(
      "sink rec is still failing: not trying its other dead letters in this run (they stay)"
    )
    expect(result.stdout).toContain("sink rec: 299 dead letter(s) not tried, left in place")
    expect(result.stdout).toContain("0 delivered and removed, 300 still dead-lettered")
    // One short round for the first letter (a few attempts in 1 s), none for the others.
    const calls = Fs.readFileSync(attempts, "utf8").trim().split("\n")
    expect(calls.length).toBeGreaterThanOrEqual(1)
    expect(calls.length).toBeLessThanOrEqual(10)
    expect(calls.every((n) => n === "1")).toBe(true)
    // Nothing lost: all 300 are still there, ids in order.
    const left = await withStore(dir, (store) => store.deadLetters({ sink: "rec" }))
    expect(left.map((l) => l.eventId)).toEqual(letters.map((l) => l.eventId))
    expect(Fs.existsSync(Path.join(dir, "rec.log"))).toBe(false)
  })
})
