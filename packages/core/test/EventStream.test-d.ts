/**
 * Type tests: checked by `typecheck` (tsc), never run by vitest. A stream's element
 * type narrows to the events its patterns select.
 */
import type * as Stream from "effect/Stream"
import { expectTypeOf } from "vitest"
import { EventStream } from "../src/index.ts"

const selected = EventStream.make({ start: "earliest", events: ["dsync.user.*", "user.created"] })
type Received = Extract<Stream.Success<typeof selected>, { readonly _tag: "Event" }>
expectTypeOf<Received["event"]["event"]>().toEqualTypeOf<
  "dsync.user.created" | "dsync.user.deleted" | "dsync.user.updated" | "user.created"
>()
