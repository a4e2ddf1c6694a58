/**
 * The event catalogue as this config sees it: every known type, whether the runner
 * reads it, which sinks take it, and an example event from WorkOS's spec (loaded on
 * first use: the examples are large and only the console needs them).
 */
import { Event, EventPattern } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import type { SinkConfig } from "../config/Schema.ts"
import type * as Api from "./Api.ts"

export interface Options {
  readonly sinks: ReadonlyArray<SinkConfig>
  /** The types the runner asks WorkOS for (undefined: every type). */
  readonly read: ReadonlyArray<string> | undefined
}

const takes = (sink: SinkConfig, type: string) =>
  sink.patterns.every((list) => list.some((p) => EventPattern.matchesName(p, type)))

export const catalogue = (options: Options): Effect.Effect<Api.Catalogue> =>
  Effect.promise(() => import("@workos-relay/core/Examples")).pipe(
    Effect.map(({ examples }) => ({
      types: Event.eventTypes.map((type) => ({
        type,
        read: options.read === undefined || options.read.includes(type),
        sinks: options.sinks
          .filter((sink) => takes(sink, type))
          .map((sink) => ({ name: sink.name, organizations: sink.organizations ?? null })),
        example: (examples as Record<string, unknown>)[type] ?? null
      }))
    }))
  )
