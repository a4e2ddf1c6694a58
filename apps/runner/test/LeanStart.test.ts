/**
 * What a start of the CLI loads: `--help` lists every command without loading what
 * they do (the pipeline, effect/http's server, SQL, the library, the sink packages);
 * the audit and mirror commands load their packages when they run. And the HTTP
 * server's package (`@effect/platform-node`, an optional peer): a config with `http`
 * says to install it when it is missing, at `validate`, before anything runs.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { tempDir } from "./helpers.ts"

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")
const fixture = (name: string) => Path.join(import.meta.dirname, "fixtures", name)

const cli = (
  args: ReadonlyArray<string>,
  options: { readonly imports?: ReadonlyArray<string> } = {}
) =>
  new Promise<{ code: number | null; stdout: string; stderr: string; modules: Array<string> }>(
    (resolve) => {
      const dir = tempDir("relay-lean-")
      const list = Path.join(dir, "modules.txt")
      const child = spawn(
        process.execPath,
        [
          ...(options.imports ?? []).flatMap((m) => ["--import", fixture(m)]),
          "--import",
          fixture("list-modules.mjs"),
          "--conditions=@workos-relay/source",
          bin,
          ...args
        ],
        {
          cwd: dir,
          stdio: ["ignore", "pipe", "pipe"],
          env: { ...process.env, LIST_MODULES_TO: list }
        }
      )
      let stdout = ""
      let stderr = ""
      child.stdout.on("data", (d) => {
        stdout += d
      })
      child.stderr.on("data", (d) => {
        stderr += d
      })
      child.on("exit", (code) => {
        const modules = Fs.existsSync(list) ? Fs.readFileSync(list, "utf8").split("\n") : []
        resolve({ code, stdout, stderr, modules })
      })
    }
  )

// What only the commands' own work needs; `--help` must load none of it.
const heavy = [
  /\/commands\/handlers\//,
  /\/src\/(Runner|Pipeline|StateStore|Observability|Registry)\.ts$/,
  /\/config\/Load\.ts$/,
  /\/packages\/core\//,
  /@workos-relay\/core\//,
  /sink-audit-log|sink-mirror|sink-slack|sink-eventbridge/,
  /@effect\/sql-pg|@effect\/platform-node\//,
  /\/effect\/dist\/http\/HttpServer\.js$/,
  /\/yaml\//
]
const heavyIn = (modules: ReadonlyArray<string>) =>
  modules.filter((url) => heavy.some((pattern) => pattern.test(url)))

describe("what a start of the CLI loads", () => {
  it("--help (and a command's --help) lists the commands without loading what they do", async () => {
    const root = await cli(["--help"])
    expect(root.code, root.stderr).toBe(0)
    for (const command of [
      "init",
      "run",
      "validate",
      "status",
      "replay",
      "dead-letters",
      "demo",
      "tap",
      "audit",
      "mirror"
    ])
      expect(root.stdout).toContain(`  ${command} `)
    expect(root.modules.length).toBeGreaterThan(0)
    expect(heavyIn(root.modules)).toEqual([])

    const retry = await cli(["dead-letters", "retry", "--help"])
    expect(retry.code, retry.stderr).toBe(0)
    expect(retry.stdout).toContain("--id")
    expect(heavyIn(retry.modules)).toEqual([])
  }, 60_000)

  it("a command loads its handler when it runs; audit and mirror load their packages", async () => {
    const schema = await cli(["config", "schema"])
    expect(schema.code, schema.stderr).toBe(0)
    expect(JSON.parse(schema.stdout).type).toBe("object")
    expect(schema.modules.some((url) => url.endsWith("/commands/handlers/config.ts"))).toBe(true)

    const audit = await cli(["audit", "--help"])
    expect(audit.code, audit.stderr).toBe(0)
    expect(audit.stdout).toContain("verify")
    expect(audit.modules.some((url) => /sink-audit-log\/src\/Cli\.ts$/.test(url))).toBe(true)

    const mirror = await cli(["mirror", "--help"])
    expect(mirror.code, mirror.stderr).toBe(0)
    expect(mirror.stdout).toContain("reconcile")
  }, 60_000)

  it("http without @effect/platform-node: validate names the package to install (exit 2)", async () => {
    const dir = tempDir("relay-no-http-")
    const withHttp = Path.join(dir, "http.yaml")
    Fs.writeFileSync(
      withHttp,
      "source:\n  type: demo\nhttp:\n  address: 127.0.0.1:0\nsinks:\n  out:\n    type: console\n"
    )
    const without = Path.join(dir, "plain.yaml")
    Fs.writeFileSync(without, "source:\n  type: demo\nsinks:\n  out:\n    type: console\n")

    const missing = await cli(["validate", "-c", withHttp], { imports: ["no-platform-node.mjs"] })
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain(
      "http: the HTTP server (health, metrics, webhooks, console) comes with @effect/platform-node: npm install @effect/platform-node@4.1.5"
    )
    const run = await cli(["run", "-c", withHttp], { imports: ["no-platform-node.mjs"] })
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("npm install @effect/platform-node@")

    // Without `http` nothing needs it.
    const plain = await cli(["validate", "-c", without], { imports: ["no-platform-node.mjs"] })
    expect(plain.code, plain.stderr).toBe(0)
    // Installed, the same file with `http` is fine.
    const installed = await cli(["validate", "-c", withHttp])
    expect(installed.code, installed.stderr).toBe(0)
  }, 60_000)
})
