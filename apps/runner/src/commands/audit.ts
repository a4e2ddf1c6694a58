/** `workos-relay audit`: the commands of the audit-log package, when it is installed. */
import { Command } from "effect/cli"
import * as Effect from "effect/Effect"
import { UsageError } from "./shared.ts"

// Typed loosely on purpose: the audit package is optional, so its types must not leak here.
export type AuditCommand = Command.Command<"audit", any, any, any, never>

/**
 * `workos-relay audit verify|query` come with @workos-relay/sink-audit-log; without
 * it, `audit` says what to install.
 */
export const loadAuditCommand = async (): Promise<AuditCommand> => {
  try {
    return (await import("@workos-relay/sink-audit-log/Cli")).audit
  } catch (error) {
    if ((error as { code?: string }).code !== "ERR_MODULE_NOT_FOUND") throw error
    return Command.make("audit", {}, () =>
      Effect.fail(
        new UsageError({
          reason:
            "the audit commands come with the audit-log sink: npm install @workos-relay/sink-audit-log"
        })
      )
    ).pipe(
      Command.withDescription(
        "Verify and query audit-log sinks (needs @workos-relay/sink-audit-log)"
      )
    )
  }
}
