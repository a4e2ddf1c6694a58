/**
 * `workos-relay init`: the file it writes for every combination of sinks passes
 * `validate` once its variables are set, its schema accepts it, and the command
 * itself (a child process, as users run it) refuses to overwrite a file.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Ajv2020 } from "ajv/dist/2020.js"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Yaml from "yaml"
import {
  parseSinks,
  type SinkType,
  sinkTypes,
  template,
  variablesOf
} from "../src/commands/init.ts"
import { load } from "../src/config/Load.ts"
import { tempDir } from "./helpers.ts"

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")

// Makes every import of the audit-log package fail as it does where it is not installed.
const noAuditLog = Path.join(import.meta.dirname, "fixtures", "no-audit-log.mjs")

const cli = (
  args: ReadonlyArray<string>,
  cwd: string,
  env: Record<string, string> = {},
  node: ReadonlyArray<string> = []
) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    // stdin is not a terminal here: `init` without --sinks must not ask.
    const child = spawn(
      process.execPath,
      [...node, "--conditions=@workos-relay/source", bin, ...args],
      {
        cwd,
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"]
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
    child.on("exit", (code) => resolve({ code, stdout, stderr }))
  })

/** Every non-empty combination of the sink types, in their order. */
const combinations: Array<Array<SinkType>> = Array.from(
  { length: 2 ** sinkTypes.length - 1 },
  (_, i) => sinkTypes.filter((_, bit) => ((i + 1) >> bit) & 1)
)

const secrets = { WORKOS_API_KEY: "sk_test_init", SLACK_BOT_TOKEN: "xoxb-init" }

describe("init", () => {
  it("--sinks: known types in the file's order, duplicates once; anything else is named", () => {
    expect(parseSinks(" slack,console ,slack")).toEqual(Result.succeed(["console", "slack"]))
    const bad = parseSinks("slack,sqs,kafka")
    expect(Result.isFailure(bad) && bad.failure).toContain('unknown sink types "sqs", "kafka"')
    expect(Result.isFailure(parseSinks(" , "))).toBe(true)
  })

  it.effect(
    `the file for each of the ${combinations.length} combinations of sinks passes validate with its variables set, and names the missing ones without`,
    () =>
      Effect.gen(function* () {
        const dir = tempDir("relay-init-")
        for (const sinks of combinations) {
          const file = Path.join(dir, `${sinks.join("+")}.yaml`)
          const text = template(sinks)
          Fs.writeFileSync(file, text)
          const config = yield* load(file, secrets)
          expect(config.sinks.map((s) => s.type)).toEqual(sinks)
          // No secret is ever a value in the file: each is a variable.
          expect(text).not.toMatch(/sk_\w|xoxb-\w|AKIA/)
          const missing = yield* Effect.flip(load(file, {}))
          const message = missing.message
          for (const v of variablesOf(sinks)) expect(message).toContain(v.name)
        }
      })
  )

  it("init then validate, as child processes; refuses to overwrite (exit 2) unless --force", async () => {
    const dir = tempDir("relay-init-cli-")
    const first = await cli(["init", "--sinks", "slack,eventbridge,audit-log,console"], dir)
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toContain(
      "wrote relay.yaml (sinks: console, slack, eventbridge, audit-log)"
    )
    expect(first.stdout).toContain("npx workos-relay validate")
    // In this workspace every sink package is installed: no install line.
    expect(first.stdout).not.toContain("npm install")
    const text = Fs.readFileSync(Path.join(dir, "relay.yaml"), "utf8")
    expect(text.split("\n")[0]).toBe("# yaml-language-server: $schema=./relay.schema.json")
    expect(text).toContain("AWS SDK's standard chain")

    // The schema it wrote next to the file accepts the file.
    const schema = JSON.parse(Fs.readFileSync(Path.join(dir, "relay.schema.json"), "utf8"))
    const check = new Ajv2020({ allErrors: true, strict: false }).compile(schema)
    expect(check(Yaml.parse(text)), JSON.stringify(check.errors)).toBe(true)

    const valid = await cli(["validate"], dir, secrets)
    expect(valid.code, valid.stderr).toBe(0)
    expect(valid.stdout).toContain("relay.yaml: ok (4 sink(s)")

    const again = await cli(["init", "--sinks", "console"], dir)
    expect(again.code).toBe(2)
    expect(again.stderr).toContain("relay.yaml already exists; not overwriting it")
    expect(Fs.readFileSync(Path.join(dir, "relay.yaml"), "utf8")).toBe(text)

    // Without --sinks and without a terminal: console, no question.
    const forced = await cli(["init", "--force"], dir)
    expect(forced.code, forced.stderr).toBe(0)
    expect(forced.stdout).toContain("(sinks: console)")
    const console = await cli(["validate"], dir, { WORKOS_API_KEY: "sk_test_init" })
    expect(console.code, console.stderr).toBe(0)

    const other = await cli(["init", "--sinks", "eventbridge", "--file", "conf/prod.yaml"], dir)
    expect(other.code, other.stderr).toBe(0)
    expect(other.stdout).toContain("npx workos-relay validate -c conf/prod.yaml")
    const otherValid = await cli(["validate", "-c", "conf/prod.yaml"], dir, secrets)
    expect(otherValid.code, otherValid.stderr).toBe(0)

    // A sink whose package is not installed: written all the same, with the install line.
    const noPackage = await cli(
      ["init", "--sinks", "audit-log,console", "--file", "audit.yaml"],
      dir,
      {},
      ["--import", noAuditLog]
    )
    expect(noPackage.code, noPackage.stderr).toBe(0)
    expect(noPackage.stdout).toContain("npm install @workos-relay/sink-audit-log")
    expect(Fs.readFileSync(Path.join(dir, "audit.yaml"), "utf8")).toContain("type: audit-log")

    const bad = await cli(["init", "--sinks", "sqs", "--file", "x.yaml"], dir)
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('unknown sink type "sqs"')
    expect(Fs.existsSync(Path.join(dir, "x.yaml"))).toBe(false)
  }, 60_000)
})
