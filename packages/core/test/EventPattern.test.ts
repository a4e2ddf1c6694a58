import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import * as Result from "effect/Result"
import { examples } from "../src/Examples.ts"
import { type Event, EventPattern } from "../src/index.ts"

describe("EventPattern", () => {
  it("expands globs over the catalogue", () => {
    expect(EventPattern.expand(["dsync.user.*"])).toEqual([
      "dsync.user.created",
      "dsync.user.deleted",
      "dsync.user.updated"
    ])
    expect(EventPattern.expand(["authentication.*_failed"])).toEqual([
      "authentication.email_verification_failed",
      "authentication.magic_auth_failed",
      "authentication.mfa_failed",
      "authentication.oauth_failed",
      "authentication.passkey_failed",
      "authentication.password_failed",
      "authentication.sso_failed"
    ])
    expect(EventPattern.expand(["*"])).toHaveLength(111)
    expect(EventPattern.expand(["user.created", "user.created"])).toEqual(["user.created"])
    // `*` crosses dots; a literal pattern matches only itself.
    expect(EventPattern.expand(["dsync.*"])).toContain("dsync.group.user_added")
    expect(EventPattern.expand(["dsync"])).toEqual([])
  })

  it("rejects a pattern that matches nothing and suggests the closest names", () => {
    const misspelt = EventPattern.validate(["user.created", "dsync.user.craeted"])
    expect(Result.isFailure(misspelt)).toBe(true)
    const error = (misspelt as Result.Failure<never, EventPattern.UnknownPatternError>).failure
    expect(error.pattern).toBe("dsync.user.craeted")
    expect(error.suggestions).toEqual(["dsync.user.created"])
    expect(error.message).toBe(
      'event pattern "dsync.user.craeted" matches no WorkOS event type; did you mean "dsync.user.created"?'
    )
    const nonsense = (
      EventPattern.validate(["zzzzzzzzzzzzzzzz"]) as Result.Failure<
        never,
        EventPattern.UnknownPatternError
      >
    ).failure
    expect(nonsense.suggestions).toEqual([])
    // A misspelt prefix pattern: the closest prefix, as a pattern.
    const prefix = (
      EventPattern.validate(["dsync.usr.*"]) as Result.Failure<
        never,
        EventPattern.UnknownPatternError
      >
    ).failure
    expect(prefix.suggestions).toEqual(["dsync.user.*"])
    expect(EventPattern.suggest("authenticaton.*")).toEqual(["authentication.*"])
    expect(Result.isSuccess(EventPattern.validate(["dsync.*", "*"]))).toBe(true)
  })

  it("filters at run time: only `*` lets unknown types through", () => {
    const unknown = {
      object: "event",
      id: "e",
      event: "dsync.user.suspended",
      data: {},
      created_at: "2026-01-01T00:00:00Z"
    } as Event.Any
    const dsyncUsers = EventPattern.matcher(["dsync.user.*"])
    expect(dsyncUsers(examples["dsync.user.updated"] as Event.Any)).toBe(true)
    expect(dsyncUsers(examples["dsync.group.created"] as Event.Any)).toBe(false)
    expect(dsyncUsers(unknown)).toBe(false)
    expect(EventPattern.matcher(["*"])(unknown)).toBe(true)
  })

  it("narrows the type of what a filter yields", () => {
    type DsyncUser = EventPattern.Matching<["dsync.user.*"]>
    expectTypeOf<DsyncUser["event"]>().toEqualTypeOf<
      "dsync.user.created" | "dsync.user.deleted" | "dsync.user.updated"
    >()
    expectTypeOf<DsyncUser>().toEqualTypeOf<
      Event.Of<"dsync.user.created" | "dsync.user.deleted" | "dsync.user.updated">
    >()
    expectTypeOf<
      EventPattern.Matching<["authentication.*_failed", "user.created"]>["event"]
    >().toEqualTypeOf<
      | "authentication.email_verification_failed"
      | "authentication.magic_auth_failed"
      | "authentication.mfa_failed"
      | "authentication.oauth_failed"
      | "authentication.passkey_failed"
      | "authentication.password_failed"
      | "authentication.sso_failed"
      | "user.created"
    >()
    expectTypeOf<EventPattern.Matching<["*"]>>().toEqualTypeOf<Event.Any>()
    expectTypeOf<EventPattern.Matching<Array<string>>>().toEqualTypeOf<Event.Any>()
    // No patterns is no filter.
    expectTypeOf<EventPattern.Matching<[]>>().toEqualTypeOf<Event.Any>()

    const events: Array<Event.Any> = Object.values(examples) as Array<Event.Any>
    const narrowed = events.filter(EventPattern.matcher(["dsync.user.*"]))
    expectTypeOf(narrowed).toEqualTypeOf<Array<DsyncUser>>()
    expect(narrowed.map((e) => e.data.object)).toEqual([
      "directory_user",
      "directory_user",
      "directory_user"
    ])
  })
})
