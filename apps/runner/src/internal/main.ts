/**
 * The command line itself (loaded by ../bin.ts once the heap is set up). Exit codes:
 * 0 ok, 1 runtime failure, 2 bad usage or config.
 */
import * as Cause from "effect/Cause"
import { CliOutput, Command } from "effect/cli"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import {
  auditListed,
  exitCode,
  loadAuditCommand,
  loadMirrorCommand,
  makeRoot,
  mirrorListed,
  missingAuditPackage,
  missingMirrorPackage,
  subcommandOf,
  UsageError
} from "../Cli.ts"
import { logLayer } from "../Logging.ts"
import * as NodeServices from "./nodeServices.ts"
import { RENDER_HELP } from "./savedHelp.ts"
import { version } from "./version.ts"

// The audit and mirror commands come from their sink packages, loaded only when the
// command line runs them (or asks for shell completions): `--help` and the other
// commands list them by name and description.
const args = process.argv.slice(2)
const runs = (name: string) => subcommandOf(args) === name || args.includes("--completions")
const audit = runs("audit") ? await loadAuditCommand() : auditListed()
const mirror = runs("mirror") ? await loadMirrorCommand() : mirrorListed()
// `audit verify ...` without the audit-log package: say what to install, rather than
// the flag parser's "unknown argument verify".
const missingAudit =
  missingAuditPackage(audit, process.argv.slice(2)) ??
  missingMirrorPackage(mirror, process.argv.slice(2))

// The build renders the root help with colors forced off and on (scripts/save-help.mjs).
const rendering = process.env[RENDER_HELP]
const helpColors =
  rendering === undefined
    ? Layer.empty
    : CliOutput.layer(CliOutput.defaultFormatter({ colors: rendering === "color" }))

const program = (
  missingAudit === undefined
    ? Command.run(makeRoot(audit, mirror), { version })
    : Effect.fail(new UsageError({ reason: missingAudit }))
).pipe(
  // Every command logs to stderr: stdout is its data (`status`, `audit query --format json`).
  // `run` and the others that read a config file log as it says.
  Effect.provide(logLayer({ level: "info", format: "auto" })),
  Effect.provide(NodeServices.layer),
  Effect.provide(helpColors),
  // Nothing collects traces: without this every WorkOS request (effect/http) makes a span.
  Effect.withTracerEnabled(false)
)

// process.exit drops what a pipe has not taken yet (a long `audit query --format json`
// was cut at 64 KiB): exit once stdout and stderr have flushed everything written before.
const exitAfterFlush = (code: number) => {
  process.exitCode = code
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)))
}

Effect.runPromiseExit(program).then((exit) => {
  if (Exit.isSuccess(exit)) return exitAfterFlush(0)
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "Some") {
    const e: any = error.value
    const tag = e?._tag
    // effect/cli has already printed its own parse errors (and help).
    if (
      !(
        typeof tag === "string" &&
        exitCode(e) === 2 &&
        tag !== "ConfigError" &&
        tag !== "UsageError"
      )
    )
      process.stderr.write(`workos-relay: ${e?.message ?? String(e)}\n`)
    return exitAfterFlush(exitCode(e))
  }
  process.stderr.write(`workos-relay: ${Cause.pretty(exit.cause)}\n`)
  exitAfterFlush(1)
})
