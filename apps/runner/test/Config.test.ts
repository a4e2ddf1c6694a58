import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Ajv2020 } from "ajv/dist/2020.js"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Yaml from "yaml"
import * as Config from "../src/Config.ts"
import * as Registry from "../src/Registry.ts"

const fixtures = Path.join(import.meta.dirname, "fixtures")
const bad = (name: string) => Path.join(fixtures, "bad", name)

const errorOf = (file: string) =>
  Config.load(file, {}).pipe(
    Effect.flip,
    Effect.map((e) => e.message)
  )

const lines = (file: string, ...problems: Array<string>) =>
  [
    `${file}: ${problems.length} problem${problems.length === 1 ? "" : "s"} in the config`,
    ...problems.map((p) => `  - ${p}`)
  ].join("\n")

const inline = (document: unknown, env: Record<string, string> = {}) =>
  Config.decode(document, {
    file: "inline",
    baseDir: fixtures,
    env: { WORKOS_API_KEY: "sk_test", ...env }
  })
const inlineError = (document: unknown, env: Record<string, string> = {}) =>
  inline(document, env).pipe(
    Effect.flip,
    Effect.map((e) => e.message)
  )
const sinks = { out: { type: "console" } }

const cases: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
  [
    "01-not-yaml.yaml",
    ["line 2, column 9: not valid YAML: Nested mappings are not allowed in compact mappings"]
  ],
  [
    "02-missing-source.yaml",
    [
      "source: required key is missing (or sources: with several by name); type: demo runs without WorkOS"
    ]
  ],
  [
    "03-unknown-top-key.yaml",
    ['sink: unknown key; did you mean "sinks"?', "sinks: required key is missing"]
  ],
  [
    "04-unknown-sink-type.yaml",
    [
      'sinks.out.type: unknown sink type "consol"; did you mean "console"? (known types: console, slack, eventbridge, audit-log, mirror; a custom sink is loaded with "module:")'
    ]
  ],
  [
    "05-missing-env.yaml",
    [
      "source.apiKey: environment variable WORKOS_TEST_UNSET_KEY is not set (write ${WORKOS_TEST_UNSET_KEY:-default} for a default)"
    ]
  ],
  [
    "06-bad-pattern.yaml",
    [
      'sinks.out.events[0]: event pattern "dsync.user.creatd" matches no WorkOS event type; did you mean "dsync.user.created"?'
    ]
  ],
  [
    "07-bad-duration.yaml",
    [
      'source.pollInterval: Expected a duration such as "500ms", "5s", "2m" or "1h", got "soon"',
      "sinks.out.batch.maxEvents: expected an integer of at least 1, got 0",
      'sinks.out.batch.maxWait: Expected a duration such as "500ms", "5s", "2m" or "1h", got "5 fortnights"'
    ]
  ],
  [
    "08-sink-option-typo.yaml",
    [
      'sinks.out.fromat: unknown key; did you mean "format"?',
      'sinks.out.retyr: unknown key; did you mean "retry"?'
    ]
  ],
  [
    "09-missing-module.yaml",
    [
      `sinks.mine.module: module "./no-such-sink.mjs" not found (looked for ${bad("no-such-sink.mjs")})`
    ]
  ],
  [
    "10-module-not-a-sink.yaml",
    [
      'sinks.mine.module: module "../not-a-sink.mjs" does not export a sink definition: export `definition` (or a default export) made with Sink.define from @workos-relay/core'
    ]
  ],
  ["11-no-sinks.yaml", ["sinks: no sinks: add at least one (type: console prints every event)"]],
  [
    "12-many-problems.yaml",
    [
      'log.level: Expected "trace" | "debug" | "info" | "warn" | "error"',
      'source.start: expected "latest", "earliest", an ISO-8601 time or an event id (event_...), got "yesterday"',
      "state: give either sqlite or postgres, not both",
      'http.address: expected host:port such as "127.0.0.1:9464", got "nowhere"',
      'sinks.out.format: Expected "line" | "json"',
      "sinks.rec.path: required key is missing"
    ]
  ],
  [
    "13-not-installed-package.yaml",
    [
      'sinks.mine.module: module "@example/not-installed-sink" not found: install it (npm install @example/not-installed-sink)'
    ]
  ],
  [
    "14-module-import-missing.yaml",
    [
      `sinks.mine.module: module "../needs-missing-package.mjs" imports "@example/missing-dependency", which is not installed where it can be found (imported from ${Path.join(fixtures, "needs-missing-package.mjs")}): install it next to the module (npm install @example/missing-dependency)`
    ]
  ],
  [
    "15-unquoted-variable.yaml",
    [
      'line 1, column 34: not valid YAML: Unexpected flow-map-start at node end (inside { } or [ ], put a variable in quotes: "${WORKOS_API_KEY}")'
    ]
  ],
  [
    "16-not-an-organization-id.yaml",
    [
      "source.organization: expected a WorkOS organization id such as org_01EHWNCE74X7JSDV0X3SZ3KJNY",
      "organizations[1]: expected a WorkOS organization id such as org_01EHWNCE74X7JSDV0X3SZ3KJNY",
      "sinks.out.organizations[0]: expected a WorkOS organization id such as org_01EHWNCE74X7JSDV0X3SZ3KJNY"
    ]
  ],
  [
    // A wrong batch setting does not hide the sink's patterns or its own options; a
    // pattern is named by its index in the list as written.
    "17-every-sink-problem-at-once.yaml",
    [
      "events[0]: Expected string",
      'events[1]: event pattern "dsync.user.creatd" matches no WorkOS event type; did you mean "dsync.user.created"?',
      "sinks.out.batch.maxEvents: expected an integer of at least 1, got 0",
      'sinks.out.events[0]: event pattern "user.craeted" matches no WorkOS event type; did you mean "user.created"?',
      'sinks.out.fromat: unknown key; did you mean "format"?'
    ]
  ],
  [
    // Options of several shapes (the audit log's stores): the problems of the shape the
    // entry names, once each; an unknown key with no close match lists the keys.
    "18-store-options.yaml",
    [
      "sinks.files.dir: unknown key; the audit-log sink takes store, directory, gzip, retention, digests (and the runner's type, module, events, organizations, batch, retry, sources)",
      "sinks.files.directory: required key is missing",
      'sinks.guess.jsonl: unknown key; did you mean "store: jsonl"?',
      "sinks.out.colour: unknown key; the console sink takes format, showSink (and the runner's type, module, events, organizations, batch, retry, sources)"
    ]
  ],
  [
    // Checked here rather than by a TypeError at run time; the Postgres URL's password
    // is not repeated.
    "19-bad-urls.yaml",
    [
      'source.baseUrl: expected an http(s) URL such as https://api.workos.com, got "127.0.0.1:35539"',
      "state.postgres: expected a Postgres URL such as postgres://user:password@host:5432/db"
    ]
  ],
  [
    // A zero poll interval or lease is a busy loop; initialDelay is checked against the
    // default maxDelay when the file gives none.
    "20-out-of-range.yaml",
    [
      "source.pollInterval: expected a duration from 50ms to 1h, got 0",
      "source.pageSize: expected an integer from 1 to 100, got 500",
      "state.leaseTtl: expected a duration from 1s to 1h, got 0",
      "shutdownTimeout: expected a duration from 1ms to 7d, got 0",
      "sinks.out.retry.maxDuration: expected a duration from 1ms to 7d, got 0",
      'sinks.out.retry.maxDelay: expected at least initialDelay ("2m"), got "1s"',
      'sinks.slow.retry.initialDelay: expected at most maxDelay (60s, the default), got "2m"'
    ]
  ],
  [
    "21-not-a-number.yaml",
    [
      'source.rate: expected a number, got "fast"',
      'sinks.out.batch.maxEvents: expected a number, got "ten"'
    ]
  ],
  [
    // A key of the other source type is named as such, not suggested as itself.
    "22-key-of-the-other-source.yaml",
    ["source.pageSize: only for source type workos", "source.start: only for source type workos"]
  ],
  [
    "23-bad-variable-syntax.yaml",
    [
      'source.apiKey: no closing } in "${WORKOS_API_KEY" (write ${NAME} or ${NAME:-default}; $${ is a literal ${)',
      'source.baseUrl: bad variable "${}": a name is letters, digits and _, not starting with a digit ($${ is a literal ${)',
      'source.organization: bad variable "${1BAD-NAME}": a name is letters, digits and _, not starting with a digit ($${ is a literal ${)'
    ]
  ],
  [
    // Date.parse would read it as March 2.
    "24-no-such-date.yaml",
    ['source.start: "2026-02-30T00:00:00Z" is not a date: February 2026 has 28 days']
  ],
  [
    // An empty list would filter every event; a name --sink cannot choose.
    "25-sinks-that-get-nothing.yaml",
    [
      'events: an empty list lets no event through; leave the key out for every type, or give patterns such as "dsync.*"',
      'sinks[""]: a sink name must not be empty or hold a comma (--sink takes comma-separated names), got ""',
      'sinks["a,b"]: a sink name must not be empty or hold a comma (--sink takes comma-separated names), got "a,b"',
      'sinks.quiet.events: an empty list lets no event through; leave the key out for every type, or give patterns such as "dsync.*"'
    ]
  ],
  [
    // A store no shape takes, and keys of another store than the one named.
    "26-store-shapes.yaml",
    [
      'sinks.a.store: expected "sqlite", "postgres" or "jsonl", got "mysql"',
      "sinks.b.path: only with store: sqlite",
      "sinks.b.directory: required key is missing",
      "sinks.c.directory: only with store: jsonl",
      "sinks.c.gzip: only with store: jsonl"
    ]
  ],
  [
    // The file's events and a sink's own have no type in common.
    "27-events-that-never-meet.yaml",
    [
      "sinks.auth.events: no event type is in all of its lists (events: dsync.*; sinks.auth.events: authentication.*): the sink would get nothing"
    ]
  ],
  [
    // .inf is said once, where it is (not also "Expected JSON value" for the whole sink).
    "28-infinity.yaml",
    ["sinks.out.retry.maxDuration: expected a duration from 1ms to 7d"]
  ]
]

describe("Config: bad files, each with its exact error", () => {
  for (const [name, problems] of cases) {
    it.effect(name, () =>
      Effect.gen(function* () {
        expect(yield* errorOf(bad(name))).toBe(lines(bad(name), ...problems))
      })
    )
  }

  it.effect("a file that does not exist", () =>
    Effect.gen(function* () {
      expect(yield* errorOf("/nonexistent/relay.yaml")).toBe(
        lines(
          "/nonexistent/relay.yaml",
          "file not found (pass --config <file>; `workos-relay config schema` prints the format)"
        )
      )
    })
  )

  it.effect("a device, a folder or a file too large is refused at once, not read for ever", () =>
    Effect.gen(function* () {
      expect(yield* errorOf("/dev/zero")).toBe(
        lines(
          "/dev/zero",
          "cannot be a config file: not a regular file (a folder, a device or a pipe)"
        )
      )
      expect(yield* errorOf(fixtures)).toBe(
        lines(
          fixtures,
          "cannot be a config file: not a regular file (a folder, a device or a pipe)"
        )
      )
      const big = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "relay-big-")), "relay.yaml")
      Fs.writeFileSync(big, `# ${"x".repeat(2 * 1024 * 1024)}\n`)
      expect(yield* errorOf(big)).toContain("more than a config file's 1048576 at most")
    })
  )

  it.effect("a missing or unknown source type is named as such, not as the Schema's union", () =>
    Effect.gen(function* () {
      expect(yield* inlineError({ source: "demo", sinks })).toBe(
        lines("inline", "source: expected a mapping with type: workos or demo")
      )
      expect(yield* inlineError({ source: {}, sinks })).toBe(
        lines("inline", 'source.type: expected "workos" or "demo"')
      )
      expect(yield* inlineError({ source: { type: "Demo" }, sinks })).toBe(
        lines("inline", 'source.type: expected "workos" or "demo", got "Demo"')
      )
    })
  )

  it.effect("a rate below 0 or not a number (.nan) says the range", () =>
    Effect.gen(function* () {
      expect(yield* inlineError({ source: { type: "demo", rate: -1 }, sinks })).toBe(
        lines("inline", "source.rate: expected a number of at least 0, got -1")
      )
      expect(yield* inlineError({ source: { type: "demo", rate: Number.NaN }, sinks })).toBe(
        lines("inline", "source.rate: expected a number of at least 0")
      )
    })
  )

  it.effect("a malformed Postgres URL is not repeated in the error (it holds a password)", () =>
    Effect.gen(function* () {
      const message = yield* inlineError({
        source: { type: "demo" },
        state: { postgres: "postgres//relay:hunter2@db/relay" },
        sinks
      })
      expect(message).toContain("state.postgres: expected a Postgres URL")
      expect(message).not.toContain("hunter2")
    })
  )

  it.effect("a shipped sink whose package is absent says which package to install", () =>
    Effect.gen(function* () {
      const error = yield* Registry.resolve({ type: "no-such" }, fixtures).pipe(Effect.flip)
      expect(error).toContain('unknown sink type "no-such"')
    })
  )
})

describe("Config: good files", () => {
  it.effect("interpolates ${VAR} and ${VAR:-default}, keeps secrets Redacted, resolves paths", () =>
    Effect.gen(function* () {
      const config = yield* Config.decode(
        {
          source: {
            type: "workos",
            apiKey: "${KEY}",
            baseUrl: "${BASE:-http://127.0.0.1:1}",
            start: "earliest"
          },
          state: { sqlite: "./state/relay.db" },
          events: ["dsync.*"],
          sinks: {
            rec: {
              module: "./recording-sink.mjs",
              path: "/tmp/x",
              events: ["dsync.user.*"],
              batch: { maxEvents: 10, maxWait: "2s" },
              retry: { maxDuration: "1m" }
            },
            out: { type: "console", format: "json" }
          }
        },
        { file: "inline", baseDir: fixtures, env: { KEY: "sk_test_123" } }
      )
      expect(config.source.type === "workos" && Redacted.value(config.source.apiKey)).toBe(
        "sk_test_123"
      )
      expect(config.source.type === "workos" && config.source.baseUrl).toBe("http://127.0.0.1:1")
      expect(config.state).toEqual({
        type: "sqlite",
        path: Path.join(fixtures, "state/relay.db"),
        leaseTtl: 15_000
      })
      const rec = config.sinks.find((s) => s.name === "rec")!
      expect(rec.type).toBe("recording")
      expect(rec.batch).toEqual({ maxEvents: 10, maxWait: 2000 })
      expect(rec.retry.maxDuration).toBe(60_000)
      expect(rec.patterns).toEqual([["dsync.*"], ["dsync.user.*"]])
      expect(String(config.source.type === "workos" && config.source.apiKey)).not.toContain(
        "sk_test_123"
      )
    })
  )

  it.effect(
    "the API key comes from WORKOS_API_KEY when the file has none; neither is an error",
    () =>
      Effect.gen(function* () {
        const document = { source: { type: "workos" }, sinks: { out: { type: "console" } } }
        const options = { file: "inline", baseDir: fixtures }
        const config = yield* Config.decode(document, {
          ...options,
          env: { WORKOS_API_KEY: "sk_env" }
        })
        expect(config.source.type === "workos" && Redacted.value(config.source.apiKey)).toBe(
          "sk_env"
        )
        const error = yield* Effect.flip(Config.decode(document, { ...options, env: {} }))
        expect(error.message).toBe(
          lines(
            "inline",
            "source.apiKey: no API key: set WORKOS_API_KEY in the environment, or give one here (apiKey: ${MY_WORKOS_KEY})"
          )
        )
      })
  )

  it.effect(
    "examples/relay.yaml is valid, with the three shipped sinks loaded from their packages",
    () =>
      Effect.gen(function* () {
        const config = yield* Config.load(
          Path.join(import.meta.dirname, "..", "..", "..", "examples", "relay.yaml"),
          {
            WORKOS_API_KEY: "sk_test_example",
            SLACK_BOT_TOKEN: "xoxb-example"
          }
        )
        expect(config.sinks.map((s) => [s.name, s.type])).toEqual([
          ["security-slack", "slack"],
          ["eventbridge", "eventbridge"],
          ["audit", "audit-log"]
        ])
        expect(config.http).toEqual({ host: "127.0.0.1", port: 9464 })
      })
  )

  it.effect(
    "the JSON Schema, with the shipped sinks, accepts examples/relay.yaml and refuses a sink option typo",
    () =>
      Effect.gen(function* () {
        const definitions = [Registry.builtins.console!]
        for (const type of Object.keys(Registry.packages))
          definitions.push(yield* Registry.resolve({ type }, fixtures))
        const validate = new Ajv2020({ allErrors: true, strict: false }).compile(
          Config.jsonSchema(definitions)
        )
        const example = Yaml.parse(
          Fs.readFileSync(
            Path.join(import.meta.dirname, "..", "..", "..", "examples", "relay.yaml"),
            "utf8"
          )
        )
        expect(validate(example), JSON.stringify(validate.errors)).toBe(true)
        const stores = [
          { type: "audit-log", store: "postgres", url: "postgres://relay@db/relay" },
          { type: "audit-log", store: "jsonl", directory: "./audit" }
        ]
        for (const sink of stores)
          expect(validate({ ...example, sinks: { audit: sink } }), JSON.stringify(sink)).toBe(true)
        const typo = { ...example.sinks["security-slack"], chanel: "#x" }
        expect(validate({ ...example, sinks: { chat: typo } })).toBe(false)
      })
  )

  it.effect(
    "source.catchUp: behindEvents defaults to 10000, may be set, 0 turns it off, never negative",
    () =>
      Effect.gen(function* () {
        const source = { type: "workos", baseUrl: "http://127.0.0.1:1" }
        const state = { postgres: "postgresql://relay@db/relay" }
        const catchUpOf = (config: Config.RelayConfig) =>
          config.source.type === "workos" ? config.source.catchUp : undefined
        const plain = yield* inline({ source, state, sinks })
        expect(catchUpOf(plain)?.behindEvents).toBe(10_000)
        for (const [given, got] of [
          ["${BEHIND:-2500}", 2_500],
          [0, 0]
        ] as const) {
          const config = yield* inline({
            source: { ...source, catchUp: { behindEvents: given } },
            state,
            sinks
          })
          expect(catchUpOf(config)).toEqual({ ...catchUpOf(plain), behindEvents: got })
        }
        const problem = yield* inlineError({
          source: { ...source, catchUp: { behindEvents: -1 } },
          state,
          sinks
        })
        expect(problem).toContain("source.catchUp.behindEvents")
      })
  )

  it.effect("numbers may be strings, as ${VAR} gives them", () =>
    Effect.gen(function* () {
      const config = yield* inline(
        {
          source: { type: "workos", pageSize: "${PS:-50}", baseUrl: "http://127.0.0.1:1" },
          state: { postgres: "postgresql://relay@db/relay" },
          sinks: { out: { type: "console", batch: { maxEvents: "${MAX}", maxBytes: 1000 } } }
        },
        { MAX: "10" }
      )
      expect(config.source.type === "workos" && config.source.pageSize).toBe(50)
      expect(config.sinks[0]!.batch).toEqual({ maxEvents: 10, maxBytes: 1000 })
      // Relative paths in a sink's options are relative to the config file's folder.
      expect(config.sinks[0]!.directory).toBe(fixtures)
      const demo = yield* inline({ source: { type: "demo", rate: " 2.5 " }, sinks })
      expect(demo.source.type === "demo" && demo.source.rate).toBe(2.5)
    })
  )

  it.effect(
    "a sink's own number option given a word says so, not the JSON codec's NaN strings",
    () =>
      Effect.gen(function* () {
        const message = yield* inlineError({
          source: { type: "demo" },
          sinks: { rec: { module: "./recording-sink.mjs", path: "x.log", delayMs: "slow" } }
        })
        expect(message).toBe(lines("inline", 'sinks.rec.delayMs: expected a number, got "slow"'))
      })
  )

  it("prints numbers and durations in the JSON Schema with their range, not the codec's NaN strings", () => {
    const schema: any = Config.jsonSchema([])
    const [workos, demo] = schema.properties.source.anyOf
    expect(workos.properties.pageSize).toEqual({
      anyOf: [{ type: "number" }, { type: "string" }],
      minimum: 1,
      maximum: 100,
      description: "An integer from 1 to 100, or a string of one (as ${VAR} gives)"
    })
    expect(demo.properties.rate.minimum).toBe(0)
    expect(schema.properties.state.properties.leaseTtl.minimum).toBe(1000)
    expect(JSON.stringify(schema)).not.toContain("Infinity")
  })

  it("prints a JSON Schema of the whole file, sinks included", () => {
    const schema: any = Config.jsonSchema(Object.values(Registry.builtins))
    expect(schema.required).toEqual(["sinks"])
    expect(schema.oneOf).toEqual([{ required: ["source"] }, { required: ["sources"] }])
    expect(schema.properties.sources.additionalProperties.anyOf).toHaveLength(2)
    expect(schema.properties.sources.propertyNames.pattern).toBe("^[a-z][a-z0-9-]{0,62}$")
    const consoleEntry = schema.properties.sinks.additionalProperties.anyOf[0]
    expect(consoleEntry.properties.type).toEqual({ type: "string", enum: ["console"] })
    expect(Object.keys(consoleEntry.properties)).toEqual(
      expect.arrayContaining(["format", "batch", "retry", "events"])
    )
    expect(schema.properties.source.anyOf).toHaveLength(2)
  })
})
