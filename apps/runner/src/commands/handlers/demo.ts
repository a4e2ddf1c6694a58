/**
 * `workos-relay demo`: the whole relay against a WorkOS stand-in, no config needed.
 * What the command does; its flags and help are in ../demo.ts, which loads
 * this module only when the command runs (`--help` does without it).
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Text } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import { decode } from "../../config/Decode.ts"
import { demo as demoConfig } from "../../config/Demo.ts"
import { formatMillis } from "../../internal/Text.ts"
import { out, UsageError, withLogs } from "../shared.ts"
import { printReport, runWithSignals } from "./running.ts"

export const demo = ({ duration, rate }: { readonly duration: string; readonly rate: number }) =>
  Effect.gen(function* () {
    // A bare number would be milliseconds: `--duration 30` surely means seconds.
    if (/^\s*\d+(?:\.\d+)?\s*$/.test(duration) && Number(duration) !== 0)
      return yield* Effect.fail(
        new UsageError({
          reason: `--duration: give a unit, as "${duration.trim()}s" or "${duration.trim()}m" (0 runs until Ctrl-C)`
        })
      )
    const ms = Text.parseDuration(duration)
    if (ms === undefined)
      return yield* Effect.fail(
        new UsageError({ reason: `--duration: expected "20s", "2m" or 0, got "${duration}"` })
      )
    if (rate < 0)
      return yield* Effect.fail(
        new UsageError({ reason: `--rate: expected 0 or more new events a second, got ${rate}` })
      )
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "workos-relay-demo-"))
    const config = yield* decode(demoConfig({ statePath: Path.join(dir, "state.db"), rate }), {
      file: "(demo)",
      baseDir: dir
    })
    yield* out(
      `workos-relay demo: a WorkOS stand-in on 127.0.0.1 with one event of every type, then ${rate} new event(s) a second,\nread through the real WorkOS client into the console sink, ${ms > 0 ? `for ${formatMillis(ms)}` : "until Ctrl-C"}.\n`
    )
    const report = yield* runWithSignals(config, { summary: false, duration: ms }).pipe(
      withLogs({ ...config, log: { level: "warn", format: "auto" } })
    )
    yield* printReport(report)
    Fs.rmSync(dir, { recursive: true, force: true })
    yield* out(
      "\nTo relay your own WorkOS events:\n  npx workos-relay init --sinks console   # or slack,eventbridge,audit-log: writes relay.yaml\n  export WORKOS_API_KEY=sk_...\n  npx workos-relay validate && npx workos-relay run"
    )
  })
