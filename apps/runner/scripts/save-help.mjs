// Renders the root help with effect/cli, plain and colored, into dist/help/, which
// dist/bin.js prints for `--help` without loading effect/cli (src/internal/savedHelp.ts).
// Run by `pnpm build` after tsc.
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

const dist = Path.join(import.meta.dirname, "..", "dist")
Fs.mkdirSync(Path.join(dist, "help"), { recursive: true })
for (const mode of ["plain", "color"]) {
  const run = spawnSync(process.execPath, [Path.join(dist, "bin.js"), "--help"], {
    env: { ...process.env, WORKOS_RELAY_RENDER_HELP: mode },
    encoding: "utf8"
  })
  if (run.status !== 0 || run.stdout === "") {
    process.stderr.write(`save-help: --help (${mode}) exited ${run.status}\n${run.stderr}`)
    process.exit(1)
  }
  Fs.writeFileSync(Path.join(dist, "help", `${mode}.txt`), run.stdout)
}
