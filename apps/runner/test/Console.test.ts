import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Event, RequestBudget } from "@workos-relay/core"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as Config from "../src/Config.ts"
import * as Api from "../src/console/Api.ts"
import * as TapClient from "../src/console/TapClient.ts"
import * as Runner from "../src/Runner.ts"
import { startConsoleRelay } from "./consoleRelay.ts"
import { fixtures, recorded, tempDir, waitUntil } from "./helpers.ts"

interface Answer {
  readonly status: number
  readonly json: any
}

const request = (
  base: string,
  path: string,
  init: { body?: unknown; headers?: Record<string, string>; raw?: string } = {}
) =>
  Effect.promise(async (): Promise<Answer> => {
    const post = init.body !== undefined || init.raw !== undefined
    const r = await fetch(`${base}${path}`, {
      method: post ? "POST" : "GET",
      headers: {
        ...(init.body !== undefined ? { "content-type": "application/json" } : {}),
        ...init.headers
      },
      ...(post ? { body: init.raw ?? JSON.stringify(init.body) } : {})
    })
    const text = await r.text()
    let json: unknown = text
    try {
      json = JSON.parse(text)
    } catch {}
    return { status: r.status, json }
  })

/** The dead letters the API lists, decoded with the API's own Schema. */
const listed = (base: string, query = "") =>
  request(base, `/console/api/dead-letters${query}`).pipe(
    Effect.flatMap((a) => {
      expect(a.status).toBe(200)
      return Schema.decodeUnknownEffect(Api.DeadLetters)(a.json)
    }),
    Effect.map((r) => r.deadLetters),
    Effect.orDie
  )

const count = (ids: ReadonlyArray<string>, id: string) => ids.filter((x) => x === id).length

describe("console API", () => {
  it.live(
    "overview: the source and every sink, with dead letters counted from the store",
    () =>
      Effect.gen(function* () {
        const relay = yield* startConsoleRelay()
        const answer = yield* request(relay.base, "/console/api/overview")
        expect(answer.status).toBe(200)
        const overview = yield* Schema.decodeUnknownEffect(Api.Overview)(answer.json).pipe(
          Effect.orDie
        )
        expect(overview.source.fetched).toBe(222)
        expect(overview.source.leaseHeld).toBe(true)
        expect(overview.source.gaps).toBe(0)
        // The key's budget: the reads that fetched those events, against its ceiling.
        expect(overview.source.budget?.maxPerMinute).toBe(RequestBudget.defaultMaxPerMinute)
        expect(overview.source.budget?.perMinute).toBeGreaterThan(0)
        expect(overview.source.budget?.throttled).toBe(0)
        const sinks = Object.fromEntries(overview.sinks.map((s) => [s.name, s]))
        expect(Object.keys(sinks).sort()).toEqual(["all", "switch"])
        expect(sinks.all).toMatchObject({ state: "running", delivered: 222, deadLetters: 0 })
        expect(sinks.switch).toMatchObject({
          state: "running",
          delivered: 222 - relay.rejected.length,
          deadLettered: relay.rejected.length,
          deadLetters: relay.rejected.length
        })
        expect(sinks.switch!.cursor).toBe(relay.standIn.events().at(-1)!.id)
        // The page and its assets: from the package, nothing from elsewhere.
        const page = yield* request(relay.base, "/console")
        expect(page.status).toBe(200)
        expect(page.json).toContain('<script type="module" src="/console/app.js">')
        expect(page.json).not.toMatch(/https?:\/\//)
        expect((yield* request(relay.base, "/console/app.js")).status).toBe(200)
        yield* relay.stop
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "dead letters: filtered by sink, type and error; retried (delivered once, removed) or still failing; dropped",
    () =>
      Effect.gen(function* () {
        const relay = yield* startConsoleRelay()
        const all = yield* listed(relay.base)
        expect(all.map((l) => l.eventId).sort()).toEqual(relay.rejected.map((e) => e.id).sort())
        expect(all.every((l) => l.sink === "switch")).toBe(true)
        expect(yield* listed(relay.base, "?sink=all")).toEqual([])
        const users = yield* listed(relay.base, "?type=user.created")
        expect(users.map((l) => l.eventType)).toEqual(["user.created", "user.created"])
        expect(yield* listed(relay.base, "?error=SWITCHED%20OFF%20for%20org")).toHaveLength(2)
        expect(yield* listed(relay.base, "?error=no%20such%20error")).toEqual([])
        // The event and the error, as stored.
        expect(JSON.parse(users[0]!.event).id).toBe(users[0]!.eventId)
        expect(users[0]!.error).toContain("switched off for user.created")

        // Still rejected: the letter stays, one attempt more, its error updated.
        const [first, second] = users
        const failing = yield* request(relay.base, "/console/api/dead-letters/retry", {
          body: { ids: [first!.id] }
        })
        expect(failing.status).toBe(200)
        expect(failing.json.outcomes).toEqual([
          { id: first!.id, delivered: false, reason: expect.stringContaining("switched off") }
        ])
        const after = (yield* listed(relay.base)).find((l) => l.id === first!.id)
        expect(after?.attempts).toBe(first!.attempts + 1)
        expect(recorded(relay.logs.switch)).not.toContain(first!.eventId)

        // Switched back on: both users go, each exactly once, and leave the list.
        Fs.writeFileSync(relay.rejectFile, "organization.created")
        const retried = yield* request(relay.base, "/console/api/dead-letters/retry", {
          body: { ids: [first!.id, second!.id] }
        })
        expect(retried.json.outcomes).toEqual([
          { id: first!.id, delivered: true },
          { id: second!.id, delivered: true }
        ])
        const delivered = recorded(relay.logs.switch)
        expect(count(delivered, first!.eventId)).toBe(1)
        expect(count(delivered, second!.eventId)).toBe(1)
        expect(delivered).toHaveLength(222 - 2)
        const left = yield* listed(relay.base)
        expect(left.map((l) => l.eventType)).toEqual([
          "organization.created",
          "organization.created"
        ])

        // An id that is not there: refused, nothing changed.
        const unknown = yield* request(relay.base, "/console/api/dead-letters/retry", {
          body: { ids: [left[0]!.id, 999_999] }
        })
        expect(unknown.status).toBe(404)
        expect(unknown.json.error).toContain("999999")
        expect(yield* listed(relay.base)).toHaveLength(2)

        // Bad bodies: a clear 400.
        for (const body of [{}, { ids: [] }, { ids: ["1"] }, { ids: [1.5] }]) {
          const bad = yield* request(relay.base, "/console/api/dead-letters/drop", { body })
          expect(bad.status).toBe(400)
          expect(bad.json.error).toContain('expected { "ids"')
        }

        // Dropped, both at once: gone, never delivered.
        const dropped = yield* request(relay.base, "/console/api/dead-letters/drop", {
          body: { ids: left.map((l) => l.id) }
        })
        expect(dropped.json).toEqual({ dropped: 2 })
        expect(yield* listed(relay.base)).toEqual([])
        expect(recorded(relay.logs.switch)).toHaveLength(222 - 2)
        const overview = yield* request(relay.base, "/console/api/overview")
        expect(
          overview.json.sinks.find((s: { name: string }) => s.name === "switch").deadLetters
        ).toBe(0)
        yield* relay.stop
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "actions refuse what a cross-site page could send: a form body, another origin",
    () =>
      Effect.gen(function* () {
        const relay = yield* startConsoleRelay()
        const [letter] = yield* listed(relay.base)
        const form = yield* request(relay.base, "/console/api/dead-letters/drop", {
          raw: `ids=${letter!.id}`,
          headers: { "content-type": "application/x-www-form-urlencoded" }
        })
        expect(form.status).toBe(415)
        const plain = yield* request(relay.base, "/console/api/dead-letters/drop", {
          raw: JSON.stringify({ ids: [letter!.id] }),
          headers: { "content-type": "text/plain" }
        })
        expect(plain.status).toBe(415)
        const foreign = yield* request(relay.base, "/console/api/dead-letters/drop", {
          body: { ids: [letter!.id] },
          headers: { origin: "https://evil.example" }
        })
        expect(foreign.status).toBe(403)
        expect(foreign.json.error).toContain("cross-site")
        for (const origin of ["null", `http://127.0.0.1.evil.example`, "not a url"]) {
          const refused = yield* request(relay.base, "/console/api/dead-letters/drop", {
            body: { ids: [letter!.id] },
            headers: { origin }
          })
          expect(refused.status).toBe(403)
        }
        expect(yield* listed(relay.base)).toHaveLength(relay.rejected.length)
        // The console's own origin is fine.
        const own = yield* request(relay.base, "/console/api/dead-letters/drop", {
          body: { ids: [letter!.id] },
          headers: { origin: relay.base }
        })
        expect(own.json).toEqual({ dropped: 1 })
        yield* relay.stop
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "with a token: the API asks for it (a wrong one is refused); the page itself loads",
    () =>
      Effect.gen(function* () {
        const relay = yield* startConsoleRelay({ token: "s3cret-token" })
        const path = "/console/api/overview"
        expect((yield* request(relay.base, path)).status).toBe(401)
        const wrong = yield* request(relay.base, path, {
          headers: { authorization: "Bearer s3cret-tokeX" }
        })
        expect(wrong.status).toBe(401)
        expect(wrong.json.error).toContain("bearer token")
        const right = yield* request(relay.base, path, {
          headers: { authorization: "Bearer s3cret-token" }
        })
        expect(right.status).toBe(200)
        const drop = yield* request(relay.base, "/console/api/dead-letters/drop", {
          body: { ids: [1] }
        })
        expect(drop.status).toBe(401)
        // The audit log's too: its query and its verify.
        expect((yield* request(relay.base, "/console/api/audit/query")).status).toBe(401)
        expect((yield* request(relay.base, "/console/api/audit/verify", { body: {} })).status).toBe(
          401
        )
        expect((yield* request(relay.base, "/console")).status).toBe(200)
        yield* relay.stop
      }).pipe(Effect.scoped),
    60_000
  )

  it.live("no console unless configured: /console is not found", () =>
    Effect.gen(function* () {
      const config = yield* Config.decode(
        {
          source: { type: "demo", rate: 0 },
          state: { sqlite: Path.join(tempDir(), "state.db") },
          http: { address: "127.0.0.1:0" },
          sinks: { c: { module: "./recording-sink.mjs", path: Path.join(tempDir(), "c.log") } }
        },
        { file: "test", baseDir: fixtures, env: {} }
      )
      expect(config.console).toBeUndefined()
      const stop = yield* Deferred.make<void>()
      const port = yield* Deferred.make<number>()
      const running = yield* Runner.run(config, {
        stop,
        onListening: (p) => Deferred.doneUnsafe(port, Effect.succeed(p))
      }).pipe(Effect.forkScoped)
      const base = `http://127.0.0.1:${yield* Deferred.await(port)}`
      for (const path of ["/console", "/console/app.js", "/console/api/overview"])
        expect((yield* request(base, path)).status).toBe(404)
      yield* Deferred.succeed(stop, undefined)
      yield* Fiber.join(running)
    }).pipe(Effect.scoped)
  )
})

describe("console config", () => {
  const decode = (extra: Record<string, unknown>) =>
    Config.decode(
      {
        source: { type: "demo" },
        sinks: { c: { type: "console" } },
        ...extra
      },
      { file: "relay.yaml", baseDir: fixtures, env: {} }
    ).pipe(
      Effect.map(() => "ok"),
      Effect.catch((e) => Effect.succeed((e as Error).message))
    )

  it.effect("needs the HTTP server; a token off loopback; no empty token", () =>
    Effect.gen(function* () {
      expect(yield* decode({ console: {} })).toContain(
        "console: the console needs the HTTP server: set http.address"
      )
      expect(yield* decode({ http: { address: "0.0.0.0:9464" }, console: {} })).toContain(
        "console.token: the console can retry and drop dead letters: on a non-loopback address (0.0.0.0) it needs a token"
      )
      expect(
        yield* decode({ http: { address: "0.0.0.0:9464" }, console: { token: "" } })
      ).toContain("console.token: an empty token")
      expect(yield* decode({ http: { address: "0.0.0.0:9464" }, console: { token: "t" } })).toBe(
        "ok"
      )
      expect(yield* decode({ http: { address: "127.0.0.1:9464" }, console: {} })).toBe("ok")
      expect(yield* decode({ http: { address: "localhost:0" }, console: {} })).toBe("ok")
    })
  )
})

/** A tap read over HTTP: the events it sends, as they come. */
const openTap = async (base: string, query: string) => {
  const controller = new AbortController()
  const response = await fetch(`${base}/console/api/tap?${query}`, { signal: controller.signal })
  const events: Array<Api.TapEvent> = []
  let listening = false
  const reading = (async () => {
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ""
    try {
      while (true) {
        const { value, done } = await reader.read()
        if (done) return
        buffer += value
        let end = buffer.indexOf("\n\n")
        while (end >= 0) {
          const message = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          if (message.startsWith(": tapping")) listening = true
          if (message.startsWith("data: "))
            events.push(Schema.decodeUnknownSync(Api.TapEvent)(JSON.parse(message.slice(6))))
          end = buffer.indexOf("\n\n")
        }
      }
    } catch {}
  })()
  return {
    status: response.status,
    contentType: response.headers.get("content-type"),
    events,
    listening: () => listening,
    close: async () => {
      controller.abort()
      await reading
    }
  }
}

describe("console tap", () => {
  it.live(
    "a live tail of the events a sink's filter passes (and an optional pattern), each id once",
    () =>
      Effect.gen(function* () {
        const relay = yield* startConsoleRelay({}, "127.0.0.1:0", {
          users: {
            module: "./recording-sink.mjs",
            path: Path.join(tempDir(), "users.log"),
            events: ["user.*"]
          }
        })
        const users = yield* Effect.promise(() => openTap(relay.base, "sink=users"))
        const orgs = yield* Effect.promise(() =>
          openTap(relay.base, "sink=all&events=organization.*")
        )
        expect(users.status).toBe(200)
        expect(users.contentType).toBe("text/event-stream")
        yield* waitUntil("both taps listening", () => users.listening() && orgs.listening())
        // Nothing from before: the tap starts now.
        expect(users.events).toEqual([])
        const added = relay.standIn.appendGenerated(222)
        const want = (p: RegExp) => added.filter((e) => p.test(e.event)).map((e) => e.id)
        const wantUsers = want(/^user\./)
        const wantOrgs = want(/^organization\./)
        expect(wantUsers.length).toBeGreaterThan(0)
        expect(wantOrgs.length).toBeGreaterThan(0)
        yield* waitUntil(
          "the tapped events",
          () => users.events.length >= wantUsers.length && orgs.events.length >= wantOrgs.length
        )
        // Every event once, in order, no more (duplicates would show as a longer list).
        yield* waitUntil("the relay to catch up", () => recorded(relay.logs.all).length === 444)
        expect(users.events.map((e) => e.id)).toEqual(wantUsers)
        expect(orgs.events.map((e) => e.id)).toEqual(wantOrgs)
        expect(users.events[0]!.event).toMatchObject({ id: wantUsers[0], object: "event" })
        yield* Effect.promise(() => Promise.all([users.close(), orgs.close()]))

        const unknown = yield* request(relay.base, "/console/api/tap?sink=nope")
        expect(unknown.status).toBe(404)
        expect(unknown.json.error).toContain("running: all, switch, users")
        const bad = yield* request(relay.base, "/console/api/tap?sink=all&events=usr.*")
        expect(bad.status).toBe(400)
        expect(bad.json.error).toContain("matches no event type")
        yield* relay.stop
      }).pipe(Effect.scoped),
    60_000
  )
})

describe("console event catalogue", () => {
  it.live(
    "every type, the sinks that take it under this config, whether it is read, an example",
    () =>
      Effect.gen(function* () {
        const relay = yield* startConsoleRelay({}, "127.0.0.1:0", {
          users: {
            module: "./recording-sink.mjs",
            path: Path.join(tempDir(), "users.log"),
            events: ["user.*"]
          }
        })
        const answer = yield* request(relay.base, "/console/api/catalogue")
        expect(answer.status).toBe(200)
        const { types } = yield* Schema.decodeUnknownEffect(Api.Catalogue)(answer.json).pipe(
          Effect.orDie
        )
        expect(types.map((t) => t.type)).toEqual([...Event.eventTypes])
        const of = (type: string) => types.find((t) => t.type === type)!
        expect(of("user.created").sinks.map((s) => s.name)).toEqual(["all", "switch", "users"])
        expect(of("organization.created").sinks.map((s) => s.name)).toEqual(["all", "switch"])
        expect(types.every((t) => t.read)).toBe(true)
        expect(of("user.created").example).toMatchObject({ event: "user.created" })
        yield* relay.stop
      }).pipe(Effect.scoped),
    60_000
  )
})

describe("tap from the terminal (workos-relay tap)", () => {
  it.live(
    "reads every event (no sink) of a pattern as lines; a wrong sink is a clear error",
    () =>
      Effect.gen(function* () {
        const relay = yield* startConsoleRelay()
        const seen: Array<Api.TapEvent> = []
        let listening = false
        const reading = yield* TapClient.read(
          { base: relay.base, events: "organization.*" },
          (e) => seen.push(e),
          () => {
            listening = true
          }
        ).pipe(Effect.forkScoped)
        yield* waitUntil("the tap", () => listening)
        const added = relay.standIn.appendGenerated(111)
        const want = added.filter((e) => e.event.startsWith("organization.")).map((e) => e.id)
        yield* waitUntil("the tapped events", () => seen.length >= want.length)
        yield* waitUntil("the relay to catch up", () => recorded(relay.logs.all).length === 333)
        expect(seen.map((e) => e.id)).toEqual(want)
        expect(TapClient.line(seen[0]!)).toBe(
          `${seen[0]!.createdAt} ${seen[0]!.type} ${seen[0]!.id}${seen[0]!.organizationId === null ? "" : ` ${seen[0]!.organizationId}`}`
        )
        yield* Fiber.interrupt(reading)

        const wrong = yield* TapClient.read({ base: relay.base, sink: "nope" }, () => {}).pipe(
          Effect.flip
        )
        expect(wrong.message).toContain('no running sink named "nope"')
        yield* relay.stop
        // Nothing listening (a port just freed): a clear error, at once.
        const free = yield* Effect.promise(
          () =>
            new Promise<number>((resolve) => {
              const server = Net.createServer().listen(0, "127.0.0.1", () => {
                const port = (server.address() as Net.AddressInfo).port
                server.close(() => resolve(port))
              })
            })
        )
        const base = `http://127.0.0.1:${free}`
        const gone = yield* TapClient.read({ base }, () => {}).pipe(Effect.flip)
        expect(gone.message).toContain(`cannot read the tap at ${base}`)
      }).pipe(Effect.scoped),
    60_000
  )
})
