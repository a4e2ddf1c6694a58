import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as AuditCli from "@workos-relay/sink-audit-log/Cli"
import { CliError } from "effect/cli"
import { exitCode, showSummary } from "../src/Cli.ts"
import { ConfigError, type RelayConfig } from "../src/Config.ts"
import { version } from "../src/internal/version.ts"
import { LeaseLost } from "../src/StateStore.ts"

describe("Cli", () => {
  it("--version is the package's version", () => {
    const pkg = JSON.parse(
      Fs.readFileSync(Path.join(import.meta.dirname, "..", "package.json"), "utf8")
    )
    expect(version).toBe(pkg.version)
  })

  it("the live summary line: on a terminal, unless a console sink prints events to it", () => {
    const withSinks = (...types: Array<string>) =>
      ({ sinks: types.map((type) => ({ name: type, type })) }) as unknown as RelayConfig
    const both = { stdout: true, stderr: true }
    expect(showSummary(withSinks("slack", "audit-log"), both)).toBe(true)
    expect(showSummary(withSinks("slack", "console"), both)).toBe(false)
    // Events piped elsewhere: the terminal has room for the summary.
    expect(showSummary(withSinks("console"), { stdout: false, stderr: true })).toBe(true)
    expect(showSummary(withSinks("slack"), { stdout: true, stderr: false })).toBe(false)
  })

  it("exit codes: 2 for bad config or usage, 1 for runtime failures", () => {
    expect(exitCode(new ConfigError({ file: "x", problems: [] }))).toBe(2)
    expect(exitCode({ _tag: "UsageError" })).toBe(2)
    expect(exitCode(new CliError.UnrecognizedOption({ option: "--x", suggestions: [] }))).toBe(2)
    expect(exitCode(new CliError.MissingOption({ option: "since" }))).toBe(2)
    // A failure of the command itself that effect/cli wraps is not bad usage.
    expect(exitCode(new CliError.UserError({ cause: new Error("boom") }))).toBe(1)
    // The audit commands' own bad usage.
    expect(exitCode(new AuditCli.UsageError({ reason: "--sqlite or --jsonl" }))).toBe(2)
    expect(exitCode(new LeaseLost({ holder: "a", token: 1 }))).toBe(1)
    expect(exitCode(new Error("boom"))).toBe(1)
  })
})
