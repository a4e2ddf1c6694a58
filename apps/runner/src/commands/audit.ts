/** `workos-relay audit`: the commands of the audit-log package, when it is installed. */
import { Command } from "effect/cli"
import * as Effect from "effect/Effect"
import { UsageError } from "./shared.ts"

// Typed loosely on purpose: the audit package is optional, so its types must not leak here.
export type AuditCommand = Command.Command<"audit", any, any, any, never>

export const auditMissing =
  "the audit commands come with the audit-log sink: npm install @workos-relay/sink-audit-log"

/** What `audit` is without the audit-log package: a command that says what to install. */
export const auditFallback: AuditCommand = Command.make("audit", {}, () =>
  Effect.fail(new UsageError({ reason: auditMissing }))
).pipe(
  Command.withDescription("Verify and query audit-log sinks (needs @workos-relay/sink-audit-log)")
)

/** Whether a module can be found, without loading it (or anything it imports). */
export const installed = (specifier: string): boolean => {
  try {
    import.meta.resolve(specifier)
    return true
  } catch {
    return false
  }
}

/**
 * What `audit` is on a command line that does not run it (the root's `--help`, other
 * commands): its name and description, without loading the audit-log package.
 */
export const auditListed = (): AuditCommand =>
  installed("@workos-relay/sink-audit-log/Cli")
    ? Command.make("audit").pipe(
        Command.withDescription("Verify and query audit-log sinks; make digest signing keys")
      )
    : auditFallback

/**
 * `workos-relay audit verify|query` come with @workos-relay/sink-audit-log; without
 * it, `audit` says what to install.
 */
export const loadAuditCommand = async (): Promise<AuditCommand> => {
  try {
    return (await import("@workos-relay/sink-audit-log/Cli")).audit
  } catch (error) {
    if ((error as { code?: string }).code !== "ERR_MODULE_NOT_FOUND") throw error
    return auditFallback
  }
}

// The global flags that take a value as the next argument (`--log-level debug`).
const globalFlagsWithValue = new Set(["--log-level", "--completions"])

/** The subcommand the command line names: its first argument that is not a flag. */
export const subcommandOf = (args: ReadonlyArray<string>): string | undefined => {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") return args[i + 1]
    if (!arg.startsWith("-")) return arg
    if (globalFlagsWithValue.has(arg)) i++
  }
  return undefined
}

/**
 * Why the command line cannot run, when it asks for `audit ...` and the audit-log
 * package is not installed. The flag parser would otherwise see `verify --sqlite x`
 * as unknown arguments of the stand-in command and say only that.
 */
export const missingAuditPackage = (
  audit: AuditCommand,
  args: ReadonlyArray<string>
): string | undefined =>
  audit === auditFallback && subcommandOf(args) === "audit" ? auditMissing : undefined
