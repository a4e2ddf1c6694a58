/**
 * `workos-relay`, `workos-relay --help` and `-h` print the root help that the build
 * rendered with effect/cli into dist/help/ (scripts/save-help.mjs): loading effect/cli
 * only to render that text takes most of a 0.3 s start. Used only where it is exactly
 * what effect/cli would print: the root help with no other argument, colored as
 * effect/cli decides (a terminal, and no NO_COLOR). From the sources (no saved text),
 * or with WORKOS_RELAY_RENDER_HELP set (how the build renders it), effect/cli runs.
 */
import * as Fs from "node:fs"

/** "plain" or "color": render the help live with colors forced off or on (the build's renders). */
export const RENDER_HELP = "WORKOS_RELAY_RENDER_HELP"

export interface SavedHelp {
  readonly text: string
  /** effect/cli's exit code for these arguments: 2 without any, 0 for --help. */
  readonly code: number
}

/** The saved help for `args`, when it is what effect/cli would print; otherwise undefined. */
export const savedHelp = (
  args: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv = process.env,
  terminal: boolean = process.stdout.isTTY === true,
  folder: URL = new URL("../help/", import.meta.url)
): SavedHelp | undefined => {
  if (env[RENDER_HELP] !== undefined) return undefined
  const code = args.length === 0 ? 2 : args.length === 1 && isHelpFlag(args[0]!) ? 0 : undefined
  if (code === undefined) return undefined
  const file = new URL(terminal && !env.NO_COLOR ? "color.txt" : "plain.txt", folder)
  try {
    return { text: Fs.readFileSync(file, "utf8"), code }
  } catch {
    return undefined
  }
}

const isHelpFlag = (arg: string) => arg === "--help" || arg === "-h"
