/**
 * The `workos-relay` command (effect/cli): init, run, validate, status, replay,
 * dead-letters list|retry|drop, config schema, demo, webhooks, tap, audit, mirror.
 * `--help` on every command.
 * Each command lives in ./commands/; this module puts them under one root.
 *
 * Exit codes: 0 ok; 1 a runtime failure (WorkOS, the state store, a lost lease, a
 * sink that stopped); 2 bad usage or a bad config file.
 */
import { Command } from "effect/cli"
import type { AuditCommand } from "./commands/audit.ts"
import { configCommand } from "./commands/config.ts"
import { deadLetters } from "./commands/deadLetters.ts"
import { demo } from "./commands/demo.ts"
import { init } from "./commands/init.ts"
import { type MirrorCommand, mirrorFallback } from "./commands/mirror.ts"
import { replay } from "./commands/replay.ts"
import { run } from "./commands/run.ts"
import { status } from "./commands/status.ts"
import { tap } from "./commands/tap.ts"
import { validate } from "./commands/validate.ts"
import { webhooks } from "./commands/webhooks.ts"

export {
  auditListed,
  loadAuditCommand,
  missingAuditPackage,
  subcommandOf
} from "./commands/audit.ts"
export { loadMirrorCommand, mirrorListed, missingMirrorPackage } from "./commands/mirror.ts"
export { showSummary } from "./commands/run.ts"
export { exitCode, RunFailed, UsageError } from "./commands/shared.ts"

export const makeRoot = (audit: AuditCommand, mirror: MirrorCommand = mirrorFallback) =>
  Command.make("workos-relay").pipe(
    Command.withDescription(
      "Relay WorkOS events to Slack, EventBridge, audit logs and your own sinks"
    ),
    Command.withSubcommands([
      init,
      run,
      validate,
      status,
      replay,
      deadLetters,
      configCommand,
      demo,
      webhooks,
      tap,
      audit,
      mirror
    ])
  )
