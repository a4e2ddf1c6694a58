import * as Fs from "node:fs"
import * as Net from "node:net"
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

/**
 * What a sink got from a run with one takeover (the first runner killed, a standby
 * taking over): every id once, in order, except the batch the first runner delivered
 * after its last checkpoint, which the standby delivers again (at least once). So
 * `got` is `all[0, k)` then `all[j, n)` with `0 <= k - j <= maxBatch`: the ids delivered
 * twice are at most one batch, contiguous, right before the standby's first delivery.
 * Two runners delivering at once would interleave or repeat more, and fail this.
 */
export const onceAroundTakeover = (
  got: ReadonlyArray<string>,
  all: ReadonlyArray<string>,
  maxBatch: number
): string | undefined => {
  let k = 0
  while (k < got.length && k < all.length && got[k] === all[k]) k++
  const rest = got.slice(k)
  if (rest.length === 0) return k === all.length ? undefined : `only ${k} of ${all.length} ids`
  const j = all.indexOf(rest[0]!)
  if (j < 0 || j > k) return `after ${k} ids in order, ${rest[0]} is not an id already delivered`
  if (k - j > maxBatch) return `${k - j} ids delivered twice, more than one batch (${maxBatch})`
  const tail = all.slice(j)
  if (rest.length !== tail.length || rest.some((id, i) => id !== tail[i]))
    return `after the ${k - j} id(s) delivered again at the takeover, the ids are not each once, in order`
  return undefined
}

/** A port free on 127.0.0.1 now (for a runner that must be told its port before it listens). */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
