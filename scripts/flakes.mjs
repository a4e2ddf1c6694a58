#!/usr/bin/env node
/**
 * Finds flaky tests: runs the suite (or chosen test files) several times, several
 * copies at once to load the machine, and lists every test that ever failed.
 *
 *   ./dev pnpm exec node scripts/flakes.mjs [--runs N] [--parallel K] [vitest args...]
 *
 * --runs      rounds (default 5)
 * --parallel  copies of the suite running at once in each round (default 2: on a
 *             2-core machine, that is the suite under load)
 * The rest goes to `vitest run` (a project, a file, `-t name`). Exit 1 when any test
 * failed in any run. Each copy writes its own JSON report under
 * node_modules/.cache/flakes/.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

const root = Path.resolve(import.meta.dirname, "..")
const reports = Path.join(root, "node_modules", ".cache", "flakes")

const parseArgs = (argv) => {
  const options = { runs: 5, parallel: 2, vitest: [] }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === "--runs" || arg === "--parallel") {
      const value = Number(argv[++i])
      if (!Number.isInteger(value) || value < 1) {
        console.error(`${arg} takes a whole number of at least 1, got ${JSON.stringify(argv[i])}`)
        process.exit(2)
      }
      options[arg.slice(2)] = value
    } else options.vitest.push(arg)
  }
  return options
}

/** One copy of the suite; resolves to its JSON report's path (absent if vitest crashed). */
const runCopy = (name, vitestArgs) =>
  new Promise((resolve) => {
    const report = Path.join(reports, `${name}.json`)
    Fs.rmSync(report, { force: true })
    const child = spawn(
      "pnpm",
      [
        "exec",
        "vitest",
        "run",
        "--reporter=dot",
        "--reporter=json",
        `--outputFile.json=${report}`,
        ...vitestArgs
      ],
      { cwd: root, stdio: ["ignore", "ignore", "pipe"] }
    )
    let stderr = ""
    child.stderr.on("data", (d) => {
      stderr = (stderr + d).slice(-4000)
    })
    child.on("exit", () => resolve({ report, stderr }))
  })

/** Failed tests of one report, as "file > test name". */
const failuresOf = ({ report, stderr }) => {
  if (!Fs.existsSync(report))
    return [`(vitest wrote no report) ${stderr.trim().split("\n").at(-1) ?? ""}`]
  const result = JSON.parse(Fs.readFileSync(report, "utf8"))
  const failed = []
  for (const file of result.testResults) {
    const relative = Path.relative(root, file.name)
    if (file.status === "failed" && file.assertionResults.length === 0)
      failed.push(`${relative} (the file failed to load: ${file.message?.split("\n")[0] ?? ""})`)
    for (const test of file.assertionResults)
      if (test.status === "failed") failed.push(`${relative} > ${test.fullName}`)
  }
  return failed
}

const options = parseArgs(process.argv.slice(2))
Fs.mkdirSync(reports, { recursive: true })
const everFailed = new Map()
for (let round = 1; round <= options.runs; round++) {
  const started = Date.now()
  const copies = await Promise.all(
    Array.from({ length: options.parallel }, (_, k) =>
      runCopy(`run-${round}-${k + 1}`, options.vitest)
    )
  )
  const failures = copies.flatMap(failuresOf)
  for (const name of failures) everFailed.set(name, (everFailed.get(name) ?? 0) + 1)
  console.log(
    `round ${round} of ${options.runs}: ${options.parallel} copies at once, ${failures.length} failure(s), ${Math.round((Date.now() - started) / 1000)} s`
  )
}
const total = options.runs * options.parallel
if (everFailed.size === 0) {
  console.log(
    `no test failed in ${total} runs (${options.runs} rounds of ${options.parallel} at once)`
  )
} else {
  console.log(`tests that failed at least once in ${total} runs:`)
  for (const [name, times] of [...everFailed].sort((a, b) => b[1] - a[1]))
    console.log(`  ${times}/${total}  ${name}`)
  process.exit(1)
}
