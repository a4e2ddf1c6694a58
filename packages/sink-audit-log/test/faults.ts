/**
 * Real faults for store tests: a small tmpfs (a full disk, a file system made read-only)
 * where this process may mount one (root), and a file-system stand-in for the rest.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { errnoError, type Files, nodeFiles } from "../src/internal/Files.ts"

export interface Tmpfs {
  readonly dir: string
  /** Remounts with other options (`ro`, `rw`, `size=8m`). */
  readonly remount: (options: string) => void
  readonly unmount: () => void
}

/** A tmpfs of `size` at a new folder under `parent`; undefined where mounting is not allowed. */
export const tmpfs = (parent: string, size: string): Tmpfs | undefined => {
  if (process.getuid?.() !== 0) return undefined
  const dir = fs.mkdtempSync(path.join(parent, "tmpfs-"))
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "pipe" })
  } catch {
    fs.rmSync(dir, { recursive: true, force: true })
    return undefined
  }
  return {
    dir,
    remount: (options) =>
      execFileSync("mount", ["-o", `remount,${options}`, dir], { stdio: "pipe" }),
    unmount: () => {
      // A reader of the test may still be closing a file on it ("target is busy"):
      // detach it now, and the kernel frees it once the last file is closed.
      execFileSync("umount", ["--lazy", dir], { stdio: "pipe" })
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

export type FaultyOp = "write" | "short-write" | "fsync" | "rename" | "truncate"

/**
 * `node:fs` with faults on demand: `fail(op, code)` makes the next `op` (every one while
 * `times` lasts) fail with a Node-shaped errno error; a `short-write` takes half the
 * bytes, and the write after it fails with ENOSPC, as a disk filling up does.
 * `budget` bytes: writes past it are short, then ENOSPC (a disk of that much room).
 */
export const faultyFiles = () => {
  const planned: Array<{ op: FaultyOp; code: string; times: number }> = []
  let budget = Number.POSITIVE_INFINITY
  let fullAfterShort = false
  const names = new Map<number, string>()
  const take = (op: FaultyOp) => {
    const i = planned.findIndex((p) => p.op === op)
    if (i === -1) return undefined
    const p = planned[i]!
    if (--p.times === 0) planned.splice(i, 1)
    return p
  }
  const files: Files = {
    ...nodeFiles,
    openSync: (file, flags) => {
      const fd = nodeFiles.openSync(file, flags)
      names.set(fd, file)
      return fd
    },
    writeSync: (fd, buffer, offset, length) => {
      const file = names.get(fd) ?? String(fd)
      const failed = take("write")
      if (failed !== undefined || fullAfterShort) {
        fullAfterShort = false
        throw errnoError(failed?.code ?? "ENOSPC", "write", file)
      }
      let n = Math.min(length, Math.max(0, budget))
      if (take("short-write") !== undefined) {
        n = Math.floor(length / 2)
        fullAfterShort = true
      }
      if (n === 0) throw errnoError("ENOSPC", "write", file)
      const written = nodeFiles.writeSync(fd, buffer, offset, n)
      budget -= written
      return written
    },
    fsyncSync: (fd) => {
      const failed = take("fsync")
      if (failed !== undefined) throw errnoError(failed.code, "fsync", names.get(fd) ?? "")
      nodeFiles.fsyncSync(fd)
    },
    ftruncateSync: (fd, length) => {
      const failed = take("truncate")
      if (failed !== undefined) throw errnoError(failed.code, "ftruncate", names.get(fd) ?? "")
      nodeFiles.ftruncateSync(fd, length)
    },
    closeSync: (fd) => {
      names.delete(fd)
      nodeFiles.closeSync(fd)
    },
    renameSync: (from, to) => {
      const failed = take("rename")
      if (failed !== undefined) throw errnoError(failed.code, "rename", from)
      nodeFiles.renameSync(from, to)
    }
  }
  return {
    files,
    fail: (op: FaultyOp, code = "EIO", times = 1) => planned.push({ op, code, times }),
    setBudget: (bytes: number) => {
      budget = bytes
    },
    get pending() {
      return planned.length
    }
  }
}

/**
 * How many times each event id is in a JSONL folder's day files, line by line as
 * written (every line must be JSON: a torn line fails the count).
 */
export const idCountsInJsonl = (directory: string): Map<string, number> => {
  const counts = new Map<string, number>()
  for (const name of fs.readdirSync(directory).sort()) {
    if (!name.endsWith(".jsonl")) continue
    const text = fs.readFileSync(path.join(directory, name), "utf8")
    for (const [i, line] of text.split("\n").entries()) {
      if (line === "") continue
      let id: string
      try {
        id = (JSON.parse(line) as { id: string }).id
      } catch {
        throw new Error(`line ${i + 1} of ${name} is not JSON: ${line.slice(0, 80)}`)
      }
      counts.set(id, (counts.get(id) ?? 0) + 1)
    }
  }
  return counts
}

/** The ids counted more or less than once, against the ids expected. */
export const notExactlyOnce = (
  counts: ReadonlyMap<string, number>,
  expected: ReadonlyArray<string>
): Array<string> => {
  const wrong = expected
    .filter((id) => counts.get(id) !== 1)
    .map((id) => `${id}×${counts.get(id) ?? 0}`)
  const known = new Set(expected)
  for (const [id, n] of counts) if (!known.has(id)) wrong.push(`unexpected ${id}×${n}`)
  return wrong
}
