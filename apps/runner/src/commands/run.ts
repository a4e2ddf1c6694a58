/** `workos-relay run`: relay events until stopped. */
import { Command } from "effect/cli"
import type { RelayConfig } from "../config/Schema.ts"
import { configFlag, lazy } from "./shared.ts"

/**
 * The live summary line, on a terminal; not when a console sink prints events to the
 * same terminal: its lines are the live view then, and would break into the summary.
 */
export const showSummary = (
  config: RelayConfig,
  terminal: { readonly stdout: boolean; readonly stderr: boolean } = {
    stdout: process.stdout.isTTY === true,
    stderr: process.stderr.isTTY === true
  }
): boolean =>
  terminal.stderr && !(terminal.stdout && config.sinks.some((sink) => sink.type === "console"))

export const run = Command.make(
  "run",
  { config: configFlag },
  lazy(
    () => import("./handlers/run.ts"),
    (m) => m.run
  )
).pipe(
  Command.withDescription(
    "Relay events from WorkOS to the sinks of a config file until stopped (SIGINT/SIGTERM)"
  )
)
