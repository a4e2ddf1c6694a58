/**
 * `workos-relay init`: writes a commented starting config (`relay.yaml`) for the sinks
 * named, and the JSON Schema next to it for editors. Secrets are `${VAR}`, never
 * values; an existing file is kept unless `--force`.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Readline from "node:readline/promises"
import { Command, Flag } from "effect/cli"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import { out, UsageError } from "./shared.ts"

/** The sink types `init` writes, in the order they appear in the file. */
export const sinkTypes = ["console", "slack", "eventbridge", "audit-log", "mirror"] as const
export type SinkType = (typeof sinkTypes)[number]

export const schemaFile = "relay.schema.json"

/** The sink types in a `--sinks` value (`slack, console`), or what is wrong with it. */
export const parseSinks = (value: string): Result.Result<Array<SinkType>, string> => {
  const names = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
  if (names.length === 0) return Result.fail(`--sinks names no sink (${sinkTypes.join(", ")})`)
  const unknown = names.filter((n) => !(sinkTypes as ReadonlyArray<string>).includes(n))
  if (unknown.length > 0)
    return Result.fail(
      `unknown sink type${unknown.length > 1 ? "s" : ""} ${unknown.map((u) => `"${u}"`).join(", ")} in --sinks (known: ${sinkTypes.join(", ")}; a custom sink is added by hand with "module:")`
    )
  return Result.succeed(sinkTypes.filter((t) => names.includes(t)))
}

/** The environment variables a config for these sinks reads, with what each holds. */
export const variablesOf = (
  sinks: ReadonlyArray<SinkType>
): Array<{ readonly name: string; readonly example: string }> => [
  { name: "WORKOS_API_KEY", example: "sk_..." },
  ...(sinks.includes("slack") ? [{ name: "SLACK_BOT_TOKEN", example: "xoxb-..." }] : [])
]

const sinkBlocks: Record<SinkType, string> = {
  console: `  # Every event, one readable line on stdout (built in). Remove it once the others work.
  console:
    type: console
    format: line # or json
`,
  slack: `  # Failed sign-ins and directory changes, as messages in a Slack channel.
  slack:
    type: slack # npm install @workos-relay/sink-slack
    # A bot token (xoxb-...) with chat:write, invited to the channel: from the environment.
    token: \${SLACK_BOT_TOKEN}
    channel: "#workos-events"
    events: ["authentication.*_failed", "dsync.user.*"]
    retry: { initialDelay: 1s, maxDelay: 1m, maxDuration: 6h }
`,
  eventbridge: `  # Every event on an EventBridge bus.
  eventbridge:
    type: eventbridge # npm install @workos-relay/sink-eventbridge
    # No AWS credentials here: the AWS SDK's standard chain finds them (AWS_ACCESS_KEY_ID
    # and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, or the instance/task role).
    # Needs events:PutEvents on the bus.
    region: \${AWS_REGION:-us-east-1}
    eventBus: default # a bus name, or an ARN for another account's bus
`,
  "audit-log": `  # Every event, once, in a tamper-evident log you can query (\`workos-relay audit\`).
  audit-log:
    type: audit-log # npm install @workos-relay/sink-audit-log
    # SQLite, relative to this file; or store: postgres with url: \${AUDIT_DATABASE_URL},
    # or store: jsonl with directory: ./audit
    path: ./.workos-relay/audit.db
`,
  mirror: `  # Organizations, users, memberships, directories and connections as tables you query
  # (\`workos-relay mirror status\`).
  mirror:
    type: mirror # npm install @workos-relay/sink-mirror
    # SQLite, relative to this file; or store: postgres with url: \${MIRROR_DATABASE_URL}
    # (and schema: workos, say)
    path: ./.workos-relay/mirror.db
    prefix: workos_ # table names: workos_users, workos_organizations, ...
`
}

/** The text of the config file for these sinks. */
export const template = (
  sinks: ReadonlyArray<SinkType>,
  options: { readonly file?: string } = {}
): string => {
  const file = options.file ?? "relay.yaml"
  const flag = file === "relay.yaml" ? "" : ` -c ${file}`
  const slack = sinks.includes("slack")
  return `# yaml-language-server: $schema=./${schemaFile}
# workos-relay config, written by \`workos-relay init --sinks ${sinks.join(",")}\`.
#
#   export WORKOS_API_KEY=sk_...${slack ? " SLACK_BOT_TOKEN=xoxb-..." : ""}
#   npx workos-relay validate${flag}    # check this file (--check-connections: reach WorkOS and the sinks)
#   npx workos-relay run${flag}         # relay until Ctrl-C
#
# \${VAR} reads the environment variable VAR, \${VAR:-default} gives a default: keep
# secrets out of this file. The schema comment above gives editors completion; after
# installing a sink package, refresh it: npx workos-relay config schema > ${schemaFile}
# Every key: https://github.com/workos-relay/workos-relay/tree/main/apps/runner#the-config-file

source:
  type: workos
  # A WorkOS secret key (sk_...), from the environment.
  apiKey: \${WORKOS_API_KEY}
  # Where a sink with no checkpoint yet starts: latest (default), earliest, an ISO-8601 time or an event id.
  start: latest
  pollInterval: 5s

# Where checkpoints, dead letters and the lease live (relative to this file). For
# several replicas (one active, the others hot standbys) use a shared Postgres:
#   state:
#     postgres: \${DATABASE_URL}
state:
  sqlite: ./.workos-relay/state.db

# Health and Prometheus metrics (/healthz, /readyz, /metrics): uncomment to serve them
# (effect's HTTP server: npm install @effect/platform-node).
# http:
#   address: 127.0.0.1:9464

log:
  level: info
  format: auto # logfmt on a terminal, JSON otherwise

sinks:
${sinks.map((s) => sinkBlocks[s]).join("\n")}
  # Your own sink: a module exporting \`definition\` made with Sink.define from @workos-relay/core.
  # my-sink:
  #   module: ./my-sink.js
  #   url: https://example.com/hook
`
}

/** The packages of these sinks that cannot be loaded from `dir` (or from the runner). */
export const missingPackages = (sinks: ReadonlyArray<SinkType>, dir: string) =>
  Effect.gen(function* () {
    // Loaded here: the registry loads the library, which `--help` does without.
    const Registry = yield* Effect.promise(() => import("../Registry.ts"))
    const missing: Array<string> = []
    for (const type of sinks) {
      const pkg = Registry.packages[type]
      if (pkg === undefined) continue
      const resolved = yield* Effect.result(Registry.resolve({ type }, dir))
      if (Result.isFailure(resolved)) missing.push(pkg)
    }
    return missing
  })

/** On a terminal without `--sinks`: which sinks? An empty answer is `console`. */
const ask = Effect.promise(async () => {
  const rl = Readline.createInterface({ input: process.stdin, output: process.stderr })
  try {
    for (;;) {
      const answer = await rl.question(
        `Sinks, comma-separated (${sinkTypes.join(", ")}) [console]: `
      )
      if (answer.trim() === "") return ["console"] as Array<SinkType>
      const parsed = parseSinks(answer)
      if (Result.isSuccess(parsed)) return parsed.success
      process.stderr.write(`${parsed.failure}\n`)
    }
  } finally {
    rl.close()
  }
})

const isTerminal = () => process.stdin.isTTY === true && process.stdout.isTTY === true

export const init = Command.make(
  "init",
  {
    sinks: Flag.String("sinks").pipe(
      Flag.optional,
      Flag.withDescription(
        `Sink types, comma-separated: ${sinkTypes.join(", ")} (default console; asked on a terminal)`
      )
    ),
    file: Flag.String("file").pipe(
      Flag.withDefault("relay.yaml"),
      Flag.withDescription("The file to write; default relay.yaml")
    ),
    force: Flag.Boolean("force").pipe(
      Flag.withDefault(false),
      Flag.withDescription("Overwrite the file (and the schema next to it) if it exists")
    )
  },
  ({ sinks: sinksFlag, file, force }) =>
    Effect.gen(function* () {
      const exists = (path: string) => Fs.existsSync(path) || isSymlink(path)
      if (exists(file) && !force)
        return yield* Effect.fail(
          new UsageError({
            reason: `${file} already exists; not overwriting it (--force to replace it, --file to write another)`
          })
        )
      let sinks: Array<SinkType> = ["console"]
      if (Option.isSome(sinksFlag)) {
        const parsed = parseSinks(sinksFlag.value)
        if (Result.isFailure(parsed))
          return yield* Effect.fail(new UsageError({ reason: parsed.failure }))
        sinks = parsed.success
      } else if (isTerminal()) {
        sinks = yield* ask
      }
      const dir = Path.dirname(Path.resolve(file))
      yield* Effect.try({
        try: () => {
          Fs.mkdirSync(dir, { recursive: true })
          Fs.writeFileSync(file, template(sinks, { file }), force ? {} : { flag: "wx" })
        },
        catch: (error) =>
          new UsageError({ reason: `cannot write ${file}: ${(error as Error).message}` })
      })
      const schemaPath = Path.join(dir, schemaFile)
      const wroteSchema = force || !exists(schemaPath)
      if (wroteSchema) {
        const { schemaOf } = yield* Effect.promise(() => import("./handlers/config.ts"))
        const { schema } = yield* schemaOf(dir)
        yield* Effect.try({
          try: () => Fs.writeFileSync(schemaPath, `${JSON.stringify(schema, null, 2)}\n`),
          catch: (error) =>
            new UsageError({ reason: `cannot write ${schemaPath}: ${(error as Error).message}` })
        })
      }
      const schemaNote = wroteSchema
        ? `, and ${Path.relative(process.cwd(), schemaPath)} for editors`
        : ` (kept the existing ${Path.relative(process.cwd(), schemaPath)})`
      yield* out(`wrote ${file} (sinks: ${sinks.join(", ")})${schemaNote}`)
      const missing = yield* missingPackages(sinks, dir)
      const flag = file === "relay.yaml" ? "" : ` -c ${file}`
      const lines = [
        ...(missing.length > 0
          ? [
              `  npm install ${missing.join(" ")}   # the sink package${missing.length > 1 ? "s" : ""} this file names`
            ]
          : []),
        `  export ${variablesOf(sinks)
          .map((v) => `${v.name}=${v.example}`)
          .join(" ")}`,
        ...(sinks.includes("eventbridge")
          ? ["  # AWS credentials: the SDK's standard chain (env, AWS_PROFILE, instance role)"]
          : []),
        `  npx workos-relay validate${flag}`,
        `  npx workos-relay run${flag}`
      ]
      yield* out(`Next:\n${lines.join("\n")}`)
    })
).pipe(
  Command.withDescription(
    "Write a commented relay.yaml for the sinks you name (and its JSON Schema for editors)"
  )
)

const isSymlink = (path: string) => {
  try {
    return Fs.lstatSync(path).isSymbolicLink()
  } catch {
    return false
  }
}
