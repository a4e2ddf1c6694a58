#!/usr/bin/env node
/**
 * The `workos-relay` executable. Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config.
 *
 * It first replaces itself (same process, same pid: `process.execve`) with Node run
 * with settings for a long-running stream, each measured with bench/pipeline.ts over
 * 1M events (figures in the README):
 *
 * - `--max-semi-space-size=8` (MiB): streaming allocates fast and keeps little; with
 *   V8's default young generation (up to 16 MiB and more) the heap grows ~100 MiB
 *   larger before V8 collects it. At 2 MiB, what a lane holds between reading and
 *   delivery (a batch, a page ahead) outlived most collections: ~20% more CPU an event
 *   for the same peak RSS (bench/pipeline.ts --baseline, 1M events).
 * - `--no-maglev`: when streaming starts, hundreds of functions turn hot at once and
 *   V8's mid-tier compiler holds ~45 MiB of compile memory for them, which the C
 *   allocator then keeps; TurboFan alone optimises the same code as fast.
 * - `--heap-growing-percent=50`: a full GC once the old generation grows 1.5x past
 *   what was live (V8 lets it grow up to 4x); live memory stays ~30 MiB, so the heap
 *   stays small at a small cost in events/s.
 * - `MALLOC_ARENA_MAX=2`: glibc otherwise gives each of V8's helper threads its own
 *   malloc arena, each holding on to freed memory.
 * - `MALLOC_MMAP_THRESHOLD_=65536`: glibc gives a block of 128 KiB or more its own
 *   mapping, returned to the system when freed, but raises that threshold (up to
 *   32 MiB) each time one is freed; then large blocks, response bodies among them,
 *   come from the heap, whose freed space stays with the process. A fixed threshold
 *   keeps the peak ~10 MiB lower and steadier.
 *
 * V8 reads its flags only when the heap is made (setting them later with
 * `v8.setFlagsFromString` does nothing), hence the re-exec. Skipped when the user
 * already tunes the heap (`--max-semi-space-size` in the command line or
 * NODE_OPTIONS), for `--help`, `-h` and `--version` (they stream nothing; a second start
 * of Node only slows them), and where `process.execve` does not exist (Windows, Node < 22.15).
 *
 * The root help (no arguments, `--help`, `-h`) is the text the build rendered with
 * effect/cli (internal/savedHelp.ts): printed without loading the CLI at all.
 */
import * as Module from "node:module"
import { problem } from "./internal/nodeVersion.ts"
import { savedHelp } from "./internal/savedHelp.ts"

// On an older Node the first thing to fail would be a bare "No such built-in module".
const tooOld = problem(process.versions.node)
if (tooOld !== undefined) {
  process.stderr.write(`${tooOld}\n`)
  process.exit(1)
}

// A reader that goes away (`workos-relay run | head`, `workos-relay --help | head`) makes
// stdout fail with EPIPE. Without a listener Node throws that from the stream and the
// process dies with a stack trace; the writers see the error themselves (the console
// sink stops).
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error
})

// The root help as the build saved it: printing it needs none of the CLI's modules.
const help = savedHelp(process.argv.slice(2))
if (help !== undefined) {
  process.exitCode = help.code
  process.stdout.write(help.text)
} else await startCli()

async function startCli() {
  const FLAGS = ["--max-semi-space-size=8", "--no-maglev", "--heap-growing-percent=50"]

  const tuned =
    process.execArgv.some((arg) => arg.startsWith("--max-semi-space-size")) ||
    (process.env.NODE_OPTIONS ?? "").includes("--max-semi-space-size")

  // Help and the version stream nothing: a second start of Node would only slow them.
  const args = process.argv.slice(2)
  const quick =
    args.length === 0 || args.some((arg) => arg === "--help" || arg === "-h" || arg === "--version")

  if (!tuned && !quick && typeof process.execve === "function") {
    process.execve(
      process.execPath,
      [process.execPath, ...process.execArgv, ...FLAGS, ...process.argv.slice(1)],
      { MALLOC_ARENA_MAX: "2", MALLOC_MMAP_THRESHOLD_: "65536", ...process.env }
    )
  }

  // Node 22 warns "SQLite is an experimental feature" on every command (the state store
  // imports node:sqlite); the warning tells a user of the CLI nothing they can act on.
  const emitWarning = process.emitWarning
  process.emitWarning = ((warning: string | Error, ...rest: Array<any>) => {
    const text = typeof warning === "string" ? warning : warning?.message
    if (typeof text === "string" && text.startsWith("SQLite is an experimental feature")) return
    return (emitWarning as (...args: Array<any>) => void).call(process, warning, ...rest)
  }) as typeof process.emitWarning

  // Node keeps the compiled code of the modules it loads in a cache on disk (under the
  // system's temp folder, or NODE_COMPILE_CACHE), so each later start skips compiling
  // them: a third of the time `--help` takes. TypeScript's own CLI does the same.
  Module.enableCompileCache?.()

  await import("./internal/main.ts")
}
