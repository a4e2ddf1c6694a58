import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Sink as CoreSink, type Event } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import * as SinkConformance from "@workos-relay/testing/SinkConformance"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { definition } from "../src/index.ts"
import * as SqliteStore from "../src/SqliteStore.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirror-sink-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
let n = 0

SinkConformance.suite({
  definition,
  config: () =>
    Effect.sync(() => ({ store: "sqlite", path: path.join(dir, `conformance-${++n}.db`) })),
  // node:sqlite on this thread: a batch's transaction runs to its end.
  synchronous: true,
  badConfigs: [
    { config: { prefix: "drop table;" }, path: "prefix" },
    { config: { store: "postgres", url: "http://x" }, path: "url" },
    { config: { store: "postgres", url: "postgres://h/db", schema: "a-b" }, path: "schema" }
  ]
})

const decode = Schema.decodeUnknownSync(definition.config)

describe("definition", () => {
  it("is type mirror, typed, and selects the event types it maps", () => {
    expect(definition.type).toBe("mirror")
    expect(definition.raw).toBeUndefined()
    expect(definition.events).toContain("dsync.group.user_added")
    expect(definition.events).not.toContain("authentication.sso_succeeded")
    expect(decode({})).toEqual({ path: "./.workos-relay/mirror.db", prefix: "workos_" })
  })

  it.live("puts a relative path in the config file's folder", () =>
    Effect.gen(function* () {
      const sink = yield* definition.make(decode({ path: "db/m.db" }), {
        name: "m",
        directory: dir
      })
      yield* sink.deliver([(examples as any)["user.created"] as Event.Any])
      expect(fs.existsSync(path.join(dir, "db/m.db"))).toBe(true)
    }).pipe(Effect.scoped)
  )

  it.live("rejects an event it cannot apply, with why; applies the rest of the batch", () =>
    Effect.gen(function* () {
      const file = path.join(dir, "reject.db")
      const sink = yield* definition.make(decode({ path: file }), { name: "m" })
      const good = (examples as any)["user.created"] as Event.Any
      const bad = { ...(examples as any)["user.updated"], id: "event_bad", data: { name: "no id" } }
      const other = (examples as any)["authentication.sso_succeeded"] as Event.Any
      const outcomes = yield* sink.deliver([good, bad, other])
      expect(outcomes).toEqual([
        CoreSink.delivered,
        CoreSink.rejected("data.id is missing"),
        CoreSink.delivered
      ])
      const store = yield* SqliteStore.make({ path: file })
      expect((yield* store.counts).users).toEqual({ live: 1, deleted: 0 })
    }).pipe(Effect.scoped)
  )
})
