/**
 * Config files and command lines a fuzzer found bad: each ends in exit 2 with a
 * message that names what and where, never a hang, a stack trace or a secret.
 */
import { execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { tempDir } from "./helpers.ts"

const bin = Path.join(import.meta.dirname, "..", "src", "bin.ts")

const cli = (cwd: string, args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ["--conditions=@workos-relay/source", bin, ...args], {
      cwd,
      env: { ...process.env, WORKOS_API_KEY: "sk_test_edges" },
      stdio: ["ignore", "pipe", "pipe"]
    })
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

const valid = (extra = "", source = "") => `source:
  type: workos
  apiKey: \${WORKOS_API_KEY}
${source}
state:
  sqlite: ./state.db
sinks:
  out:
    type: console
${extra}`

/** Runs `args` on `file` written with `text` (or bytes) and expects exit 2, no stack trace. */
const fails = async (
  content: string | Uint8Array,
  args: ReadonlyArray<string> = ["validate"]
): Promise<string> => {
  const dir = tempDir("relay-edges-")
  Fs.writeFileSync(Path.join(dir, "relay.yaml"), content)
  const result = await cli(dir, [...args, "-c", "relay.yaml"])
  expect(result.code, result.stderr).toBe(2)
  expect(result.stderr).not.toMatch(/\n\s+at /)
  return result.stderr
}

describe("config edge cases", () => {
  it("-c /dev/zero and a FIFO: not a regular file, no hang", async () => {
    const dir = tempDir("relay-edges-")
    const zero = await cli(dir, ["validate", "-c", "/dev/zero"])
    expect(zero.code).toBe(2)
    expect(zero.stderr).toContain("/dev/zero")
    expect(zero.stderr).toContain("not a regular file")
    execFileSync("mkfifo", [Path.join(dir, "fifo")])
    const fifo = await cli(dir, ["validate", "-c", "fifo"])
    expect(fifo.code).toBe(2)
    expect(fifo.stderr).toContain("not a regular file")
  })

  it("a recursive YAML alias", async () => {
    const stderr = await fails(`${valid()}\na: &a [*a]\n`)
    expect(stderr).toContain("relay.yaml")
  })

  it("huge durations and values that never make sense are refused, naming the key", async () => {
    const lease = valid().replace(
      "  sqlite: ./state.db",
      "  sqlite: ./state.db\n  leaseTtl: 999999999999999d"
    )
    expect(await fails(lease)).toContain("state.leaseTtl: expected a duration from 1s to 1h")
    expect(await fails(lease, ["status"])).toContain("state.leaseTtl")
    const poll = valid("", "  pollInterval: 1e21")
    expect(await fails(poll)).toContain("source.pollInterval: expected a duration from 50ms to 1h")
    const retry = valid("    retry:\n      maxDuration: 30d")
    expect(await fails(retry)).toContain(
      "sinks.out.retry.maxDuration: expected a duration from 1ms to 7d"
    )
  })

  it("state.sqlite empty or a folder fails validate", async () => {
    const empty = valid().replace("sqlite: ./state.db", 'sqlite: ""')
    expect(await fails(empty)).toContain("state.sqlite")
    const folder = valid().replace("sqlite: ./state.db", "sqlite: /tmp")
    expect(await fails(folder)).toContain("state.sqlite")
  })

  it("a UTF-16 file says it is UTF-16 and must be UTF-8", async () => {
    const text = valid()
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")])
    expect(await fails(le)).toContain("UTF-16")
    expect(await fails(Buffer.from(text, "utf16le"))).toContain("UTF-16")
  })

  it("a bad source.baseUrl never echoes credentials in it", async () => {
    const stderr = await fails(valid("", "  baseUrl: htps://admin:hunter2secret@api.workos.com"))
    expect(stderr).toContain("source.baseUrl")
    expect(stderr).not.toContain("hunter2secret")
  })
})

describe("a sink module that never finishes loading", () => {
  it("validate waits a bounded time, says so and exits 2", async () => {
    const dir = tempDir("relay-edges-")
    Fs.writeFileSync(Path.join(dir, "package.json"), '{"type":"module"}')
    Fs.writeFileSync(
      Path.join(dir, "stuck.mjs"),
      "await new Promise(() => {})\nexport const definition = {}\n"
    )
    Fs.writeFileSync(
      Path.join(dir, "relay.yaml"),
      valid().replace("    type: console", "    module: ./stuck.mjs")
    )
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        ["--conditions=@workos-relay/source", bin, "validate", "-c", "relay.yaml"],
        {
          cwd: dir,
          env: {
            ...process.env,
            WORKOS_API_KEY: "sk_test_edges",
            WORKOS_RELAY_MODULE_TIMEOUT: "500"
          },
          stdio: ["ignore", "ignore", "pipe"]
        }
      )
      let stderr = ""
      child.stderr.on("data", (d) => {
        stderr += d
      })
      child.on("exit", (code) => resolve({ code, stderr }))
    })
    expect(result.code, result.stderr).toBe(2)
    expect(result.stderr).toContain("stuck.mjs")
    expect(result.stderr).toContain("did not finish loading within 500 ms")
  })
})
