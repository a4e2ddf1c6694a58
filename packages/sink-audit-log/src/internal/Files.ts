/**
 * The synchronous file operations the JSONL store writes with. Node's `fs` by default;
 * tests hand in one that fails or writes short the way a full disk does, where no
 * small file system can be mounted.
 */
import * as fs from "node:fs"

export interface Files {
  readonly openSync: (file: string, flags: string) => number
  /** Writes at most `length` bytes of `buffer` from `offset`; returns how many it wrote. */
  readonly writeSync: (fd: number, buffer: Uint8Array, offset: number, length: number) => number
  readonly fsyncSync: (fd: number) => void
  readonly ftruncateSync: (fd: number, length: number) => void
  readonly closeSync: (fd: number) => void
  readonly renameSync: (from: string, to: string) => void
}

export const nodeFiles: Files = {
  openSync: (file, flags) => fs.openSync(file, flags),
  writeSync: (fd, buffer, offset, length) => fs.writeSync(fd, buffer, offset, length),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  ftruncateSync: (fd, length) => fs.ftruncateSync(fd, length),
  closeSync: (fd) => fs.closeSync(fd),
  renameSync: (from, to) => fs.renameSync(from, to)
}

/** An error shaped as Node's own for errno `code` (ENOSPC, EIO), naming the call and the file. */
export const errnoError = (code: string, syscall: string, file: string): NodeJS.ErrnoException => {
  const e: NodeJS.ErrnoException = new Error(`${code}: ${syscall} ${file}`)
  e.code = code
  e.syscall = syscall
  e.path = file
  return e
}

/**
 * Writes every byte of `buffer` at the file's end, or throws: a write that takes fewer
 * bytes (what a full disk does) is written on from where it stopped, and one that
 * takes none is ENOSPC.
 */
export const writeAll = (files: Files, fd: number, buffer: Uint8Array, file: string): void => {
  let offset = 0
  while (offset < buffer.length) {
    const n = files.writeSync(fd, buffer, offset, buffer.length - offset)
    if (n <= 0) throw errnoError("ENOSPC", "write", file)
    offset += n
  }
}
