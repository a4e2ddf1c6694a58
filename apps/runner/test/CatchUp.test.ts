/**
 * The runner catching up a long backlog in parallel slices, as users run it (a child
 * process of `src/bin.ts`): every sink gets each event once and in order, and a
 * kill -9 in the middle of the catch-up loses nothing.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { WorkOSStandIn } from "@workos-relay/testing"
import { recorded, recordingSink, tempDir, waitUntilAsync } from "./helpers.ts"

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")

const start = (args: ReadonlyArray<string>, apiKey: string) => {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--conditions=@workos-relay/source", bin, ...args],
    { env: { ...process.env, TEST_KEY: apiKey }, stdio: ["ignore", "pipe", "pipe"] }
  )
  let stderr = ""
  child.stderr!.on("data", (d) => {
    stderr += d
  })
  child.stdout!.resume()
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve))
  return { child, exited, stderr: () => stderr }
}

/** Ten events in every whole second from 40 minutes ago: slice edges fall on ten events of one millisecond. */
const backlog = (count: number, quirks: Partial<WorkOSStandIn.Quirks> = {}) => {
  const base = Math.floor((Date.now() - 40 * 60_000) / 1000) * 1000
  return WorkOSStandIn.start({
    events: count,
    seedTimes: (i) => base + Math.floor(i / 10) * 1000,
    network: { latencyMs: 3, jitterMs: 4 },
    quirks
  })
}

const writeConfig = (dir: string, url: string, sinks: Record<string, { delayMs?: number }>) => {
  const file = Path.join(dir, "relay.yaml")
  const entries = Object.entries(sinks)
    .map(
      ([name, o]) => `  ${name}:
    module: ${JSON.stringify(recordingSink)}
    path: ${JSON.stringify(Path.join(dir, `${name}.log`))}
    maxEvents: 100
${o.delayMs === undefined ? "" : `    delayMs: ${o.delayMs}\n`}`
    )
    .join("")
  Fs.writeFileSync(
    file,
    `source:
  type: workos
  apiKey: \${TEST_KEY}
  baseUrl: ${url}
  start: earliest
  pollInterval: 50ms
  reReadWindow: 2s
  catchUp: { minBehind: 1m, minEvents: 500, slices: 6 }
state:
  sqlite: ./state.db
  leaseTtl: 1s
log: { format: json }
shutdownTimeout: 2s
sinks:
${entries}`
  )
  return file
}

const countIds = (ids: ReadonlyArray<string>) => {
  const counts = new Map<string, number>()
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1)
  return counts
}

let standIn: WorkOSStandIn.StandIn | undefined
afterEach(async () => {
  await standIn?.close()
  standIn = undefined
})

describe("parallel catch-up in the runner", { timeout: 120_000 }, () => {
  it("a hostile server (range_end ignored, after backwards or stuck, late commits): every sink gets each event once, in order", async () => {
    standIn = await backlog(6_000, { ...WorkOSStandIn.hostile, ignoreRange: false })
    const dir = tempDir()
    const config = writeConfig(dir, standIn.url, { a: {}, b: { delayMs: 2 } })
    const all = standIn.events().map((e) => e.id)
    const run = start(["run", "-c", config], standIn.apiKey)
    for (const sink of ["a", "b"])
      await waitUntilAsync(
        `every event delivered to ${sink}`,
        () => recorded(Path.join(dir, `${sink}.log`)).length >= all.length,
        90_000
      )
    // New events while it follows: each once too.
    const more = standIn.appendGenerated(20).map((e) => e.id)
    for (const sink of ["a", "b"])
      await waitUntilAsync(
        `the new events delivered to ${sink}`,
        () => recorded(Path.join(dir, `${sink}.log`)).length >= all.length + more.length,
        30_000
      )
    await new Promise((r) => setTimeout(r, 500))
    run.child.kill("SIGTERM")
    expect(await run.exited).toBe(0)
    for (const sink of ["a", "b"]) {
      const got = recorded(Path.join(dir, `${sink}.log`))
      const repeated = [...countIds(got)].filter(([, n]) => n > 1)
      expect(repeated).toEqual([])
      expect(got).toEqual([...all, ...more])
    }
    // It did read in slices: many first pages asked with range_start.
    expect(
      standIn.requests.filter((r) => r.url.searchParams.has("range_start")).length
    ).toBeGreaterThan(3)
  })

  it("kill -9 in the middle of a catch-up, then restart: nothing lost, nothing repeated beyond one batch", async () => {
    standIn = await backlog(8_000)
    const dir = tempDir()
    const config = writeConfig(dir, standIn.url, { rec: { delayMs: 20 } })
    const all = standIn.events().map((e) => e.id)
    const log = Path.join(dir, "rec.log")
    const first = start(["run", "-c", config], standIn.apiKey)
    await waitUntilAsync(
      "part of the backlog delivered",
      () => recorded(log).length >= 1_500,
      60_000
    )
    first.child.kill("SIGKILL")
    await first.exited
    const before = recorded(log).length
    expect(before).toBeLessThan(all.length)
    const slicedBefore = standIn.requests.filter((r) =>
      r.url.searchParams.has("range_start")
    ).length
    expect(slicedBefore).toBeGreaterThan(1)
    const second = start(["run", "-c", config], standIn.apiKey)
    await waitUntilAsync(
      "every event delivered",
      () => new Set(recorded(log)).size === all.length,
      90_000
    )
    second.child.kill("SIGTERM")
    expect(await second.exited).toBe(0)
    const got = recorded(log)
    // In order, each at least once; repeats only the batch in flight at the kill (at most 100).
    expect([...new Set(got)]).toEqual(all)
    const repeats = got.length - all.length
    expect(repeats).toBeLessThanOrEqual(100)
    // The restart caught up in slices again, from its checkpoint.
    expect(
      standIn.requests.filter((r) => r.url.searchParams.has("range_start")).length
    ).toBeGreaterThan(slicedBefore)
  })
})
