#!/usr/bin/env node
/**
 * The `workos-relay` executable. Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config.
 *
 * It first replaces itself (same process, same pid: `process.execve`) with Node run
 * with a small young generation, `--max-semi-space-size=2` (MiB). Streaming events
 * allocates fast and keeps little (pages are parsed, delivered and dropped); with
 * V8's default semi-spaces the heap grows to ~200 MiB before V8 collects it, with
 * 2 MiB it stays under ~100 MiB at the same throughput (see bench/pipeline.ts and
 * the README). V8 reads the flag only when the heap is made, so setting it later
 * (`v8.setFlagsFromString`) does nothing. Skipped when the flag is already given
 * (in the command line or NODE_OPTIONS) and where `process.execve` does not exist
 * (Windows, Node < 22.15).
 */
const FLAG = "--max-semi-space-size"

const given =
  process.execArgv.some((arg) => arg.startsWith(FLAG)) ||
  (process.env.NODE_OPTIONS ?? "").includes(FLAG)

if (!given && typeof process.execve === "function") {
  process.execve(process.execPath, [
    process.execPath,
    ...process.execArgv,
    `${FLAG}=2`,
    ...process.argv.slice(1)
  ])
}

await import("./internal/main.ts")
