/**
 * `workos-relay audit ...` without @workos-relay/sink-audit-log: what to install, exit
 * 2, whatever follows `audit` (the flag parser would call `verify` unknown).
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { auditFallback, missingAuditPackage, subcommandOf } from "../src/commands/audit.ts"
import { tempDir } from "./helpers.ts"

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")
// Makes every import of the audit-log package fail as it does where it is not installed.
const noAuditLog = Path.join(import.meta.dirname, "fixtures", "no-audit-log.mjs")

const cli = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(
      process.execPath,
      ["--import", noAuditLog, "--conditions=@workos-relay/source", bin, ...args],
      { cwd: tempDir("relay-no-audit-"), stdio: ["ignore", "pipe", "pipe"] }
    )
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => {
      stdout += d
    })
    child.stderr.on("data", (d) => {
      stderr += d
    })
    child.on("exit", (code) => resolve({ code, stdout, stderr }))
  })

const install =
  "workos-relay: the audit commands come with the audit-log sink: npm install @workos-relay/sink-audit-log\n"

describe("audit without the audit-log package", () => {
  it("the subcommand is the first argument that is not a flag (or a global flag's value)", () => {
    expect(subcommandOf(["audit", "verify"])).toBe("audit")
    expect(subcommandOf(["--log-level", "debug", "audit"])).toBe("audit")
    expect(subcommandOf(["--log-level=debug", "audit"])).toBe("audit")
    expect(subcommandOf(["status", "audit"])).toBe("status")
    expect(subcommandOf(["--help"])).toBe(undefined)
    expect(missingAuditPackage(auditFallback, ["audit", "query", "--sqlite", "x"])).toContain(
      "npm install @workos-relay/sink-audit-log"
    )
    expect(missingAuditPackage(auditFallback, ["status"])).toBe(undefined)
  })

  it("says what to install, exit 2, for audit verify|query with their flags", async () => {
    for (const args of [
      ["audit", "verify", "--sqlite", "audit.db"],
      ["--log-level", "debug", "audit", "query", "--jsonl", "./audit", "--format", "json"],
      ["audit"]
    ]) {
      const result = await cli(args)
      expect(result.code, args.join(" ")).toBe(2)
      expect(result.stderr, args.join(" ")).toBe(install)
      expect(result.stdout).toBe("")
    }
    // The other commands are untouched.
    const help = await cli(["init", "--help"])
    expect(help.code, help.stderr).toBe(0)
    expect(help.stdout).toContain("--sinks")
  }, 60_000)

  it("the console's audit-log page says to install the package", async () => {
    const dir = tempDir("relay-no-audit-console-")
    Fs.writeFileSync(
      Path.join(dir, "relay.yaml"),
      [
        "source: { type: demo, rate: 0 }",
        "state: { sqlite: ./state.db }",
        'http: { address: "127.0.0.1:0" }',
        "console: {}",
        "sinks: { c: { type: console } }"
      ].join("\n")
    )
    const child = spawn(
      process.execPath,
      ["--import", noAuditLog, "--conditions=@workos-relay/source", bin, "run", "-c", "relay.yaml"],
      { cwd: dir, stdio: ["ignore", "ignore", "pipe"] }
    )
    const exited = new Promise((resolve) => child.on("exit", resolve))
    try {
      let stderr = ""
      const base = await new Promise<string>((resolve, reject) => {
        child.stderr.on("data", (d) => {
          stderr += d
          const found = /health and metrics on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)
          if (found !== null) resolve(found[1]!)
        })
        child.on("exit", () => reject(new Error(`the relay ended before it listened: ${stderr}`)))
      })
      const answer = await fetch(`${base}/console/api/audit`)
      expect(answer.status).toBe(200)
      expect(await answer.json()).toEqual({
        installed: false,
        sinks: [],
        help: expect.stringContaining(
          "The audit log comes with the audit-log sink, which is not installed: npm install @workos-relay/sink-audit-log"
        )
      })
      const query = await fetch(`${base}/console/api/audit/query`)
      expect(query.status).toBe(404)
      expect(((await query.json()) as { error: string }).error).toContain(
        "no audit-log sink is configured"
      )
    } finally {
      child.kill("SIGTERM")
      await exited
    }
  }, 60_000)
})
