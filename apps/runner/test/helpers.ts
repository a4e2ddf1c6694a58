import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Effect from "effect/Effect"

export const fixtures = Path.join(import.meta.dirname, "fixtures")
export const recordingSink = Path.join(fixtures, "recording-sink.mjs")

export const tempDir = (prefix = "relay-test-") => Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix))

/** The ids a recording sink wrote, in order. */
export const recorded = (file: string): Array<string> =>
  Fs.existsSync(file)
    ? Fs.readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l !== "")
    : []

/** Waits (real time) until `check` holds, or fails with `what` after `timeout` ms. */
export const waitUntil = (what: string, check: () => boolean, timeout = 15_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeout
    while (!check()) {
      if (Date.now() > deadline)
        return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep(25)
    }
  })

// Generous: starting a Node process takes seconds on a busy 2-core machine.
export const waitUntilAsync = async (what: string, check: () => boolean, timeout = 30_000) => {
  const deadline = Date.now() + timeout
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}
