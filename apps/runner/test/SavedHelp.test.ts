/**
 * The saved root help (src/internal/savedHelp.ts): used for exactly the arguments
 * whose output it is, in the variant effect/cli would choose, and never while the
 * build renders it. That the saved text equals effect/cli's live output is checked
 * on the packed CLI by scripts/npm-install-check.sh.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { RENDER_HELP, savedHelp } from "../src/internal/savedHelp.ts"
import { tempDir } from "./helpers.ts"

const folder = () => {
  const dir = tempDir("relay-help-")
  Fs.writeFileSync(Path.join(dir, "plain.txt"), "PLAIN\n")
  Fs.writeFileSync(Path.join(dir, "color.txt"), "\u001b[1mCOLOR\u001b[0m\n")
  return pathToFileURL(`${dir}/`)
}

describe("the saved root help", () => {
  it("serves no arguments (exit 2), --help and -h (exit 0), and nothing else", () => {
    const at = folder()
    expect(savedHelp([], {}, false, at)).toEqual({ text: "PLAIN\n", code: 2 })
    expect(savedHelp(["--help"], {}, false, at)).toEqual({ text: "PLAIN\n", code: 0 })
    expect(savedHelp(["-h"], {}, false, at)).toEqual({ text: "PLAIN\n", code: 0 })
    for (const args of [["run", "--help"], ["--help", "run"], ["--version"], ["-h", "-h"]])
      expect(savedHelp(args, {}, false, at), args.join(" ")).toBeUndefined()
  })

  it("colored on a terminal unless NO_COLOR is set (effect/cli's own rule)", () => {
    const at = folder()
    expect(savedHelp(["--help"], {}, true, at)?.text).toContain("\u001b[1mCOLOR")
    expect(savedHelp(["--help"], { NO_COLOR: "1" }, true, at)?.text).toBe("PLAIN\n")
    expect(savedHelp(["--help"], { NO_COLOR: "" }, true, at)?.text).toContain("COLOR")
  })

  it("renders live while the build renders it, and where nothing was saved (the sources)", () => {
    expect(savedHelp(["--help"], { [RENDER_HELP]: "plain" }, false, folder())).toBeUndefined()
    const empty = pathToFileURL(`${tempDir("relay-help-")}/`)
    expect(savedHelp(["--help"], {}, false, empty)).toBeUndefined()
  })
})
