import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Config from "../src/Config.ts"

const fixtures = Path.join(import.meta.dirname, "fixtures")

const decode = (document: unknown, env: Record<string, string> = {}) =>
  Config.decode(document, { file: "inline", baseDir: fixtures, env })
const problemsOf = (document: unknown, env: Record<string, string> = {}) =>
  decode(document, env).pipe(
    Effect.flip,
    Effect.map((e) => e.problems.map((p) => `${p.path}: ${p.message}`))
  )

const prod = { type: "workos", apiKey: "${PROD_KEY}", baseUrl: "http://127.0.0.1:1" }
const staging = {
  type: "workos",
  apiKey: "${STAGING_KEY}",
  baseUrl: "http://127.0.0.1:2",
  events: ["dsync.*"],
  start: "earliest",
  maxRequestsPerMinute: 600
}
const env = { PROD_KEY: "sk_prod", STAGING_KEY: "sk_staging" }

describe("Config: several sources", () => {
  it.effect("sources: by name, each with its own key, filters, start and budget", () =>
    Effect.gen(function* () {
      const config = yield* decode(
        {
          sources: { prod, staging },
          sinks: {
            both: { type: "console" },
            stagingOnly: { type: "console", sources: ["staging"] }
          }
        },
        env
      )
      const sources = Config.sourcesOf(config)
      expect(sources.map((s) => s.name)).toEqual(["prod", "staging"])
      const [p, s] = sources as ReadonlyArray<Extract<Config.NamedSource, { type: "workos" }>>
      expect(Redacted.value(p!.apiKey)).toBe("sk_prod")
      expect(Redacted.value(s!.apiKey)).toBe("sk_staging")
      expect(p!.baseUrl).toBe("http://127.0.0.1:1")
      expect([p!.start, s!.start]).toEqual(["latest", "earliest"])
      expect([p!.events, s!.events]).toEqual([undefined, ["dsync.*"]])
      expect([p!.maxRequestsPerMinute, s!.maxRequestsPerMinute]).toEqual([4800, 600])
      // The first source stands as `source` for the commands that read one.
      expect(config.source.type === "workos" && config.source.baseUrl).toBe("http://127.0.0.1:1")
      const [both, only] = config.sinks
      expect(Config.sourcesOfSink(config, both!).map((x) => x.name)).toEqual(["prod", "staging"])
      expect(Config.sourcesOfSink(config, only!).map((x) => x.name)).toEqual(["staging"])
      // Secrets stay redacted when shown.
      expect(JSON.stringify(config)).not.toContain("sk_prod")
    })
  )

  it.effect("source: keeps working, as one source named default", () =>
    Effect.gen(function* () {
      const config = yield* decode(
        { source: { type: "demo" }, sinks: { out: { type: "console" } } },
        {}
      )
      expect(config.sources).toBeUndefined()
      expect(Config.sourcesOf(config)).toEqual([{ ...config.source, name: "default" }])
      expect(Config.sourcesOfSink(config, config.sinks[0]!).map((s) => s.name)).toEqual(["default"])
      // A sink may name it.
      const named = yield* decode(
        { source: { type: "demo" }, sinks: { out: { type: "console", sources: ["default"] } } },
        {}
      )
      expect(named.sinks[0]!.sources).toEqual(["default"])
    })
  )

  it.effect("source: and sources: at once is an error that says which to keep", () =>
    Effect.gen(function* () {
      expect(
        yield* problemsOf(
          { source: { type: "demo" }, sources: { prod }, sinks: { out: { type: "console" } } },
          env
        )
      ).toEqual([
        "sources: give either source: (one source, named default) or sources: (several, by name), not both"
      ])
    })
  )

  it.effect("source names, empty sources and each source's own problems, with their paths", () =>
    Effect.gen(function* () {
      expect(
        yield* problemsOf(
          {
            sources: {
              Prod: prod,
              "eu west": { type: "demo" },
              ok: { type: "workos", baseUrl: "http://127.0.0.1:1", start: "2026-02-30" },
              typo: { type: "workos", apiKey: "k", rate: 3 },
              bad: { type: "nope" }
            },
            sinks: { out: { type: "console" } }
          },
          env
        )
      ).toEqual([
        "sources.typo.rate: only for source type demo",
        'sources.bad.type: expected "workos" or "demo", got "nope"',
        'sources.Prod: a source name is lower-case letters, digits and dashes, starting with a letter (at most 63), got "Prod"',
        'sources["eu west"]: a source name is lower-case letters, digits and dashes, starting with a letter (at most 63), got "eu west"',
        "sources.ok.apiKey: no API key: give this source its own (apiKey: ${WORKOS_OK_KEY}), or set WORKOS_API_KEY",
        'sources.ok.start: "2026-02-30" is not a date: February 2026 has 28 days'
      ])
      expect(yield* problemsOf({ sources: {}, sinks: { out: { type: "console" } } })).toEqual([
        "sources: no sources: add at least one (name: { type: workos, apiKey: ${MY_WORKOS_KEY} })"
      ])
    })
  )

  it.effect("a sink's sources: an unknown name (with the closest), twice, or none", () =>
    Effect.gen(function* () {
      expect(
        yield* problemsOf(
          {
            sources: { prod, staging },
            sinks: {
              a: { type: "console", sources: ["stagin"] },
              b: { type: "console", sources: ["prod", "prod"] },
              c: { type: "console", sources: [] },
              d: { type: "console", sources: "prod" }
            }
          },
          env
        )
      ).toEqual([
        "sinks.d.sources: Expected array",
        'sinks.a.sources[0]: unknown source "stagin"; did you mean "staging"? (the file\'s sources: prod, staging)',
        'sinks.b.sources[1]: "prod" is named twice',
        "sinks.c.sources: an empty list takes no source; leave the key out for every source"
      ])
      // With `source:`, the one name is default.
      expect(
        yield* problemsOf({
          source: { type: "demo" },
          sinks: { a: { type: "console", sources: ["prod"] } }
        })
      ).toEqual(['sinks.a.sources[0]: unknown source "prod" (the file\'s sources: default)'])
    })
  )
})
