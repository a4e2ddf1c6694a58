/**
 * The tap: a live tail of the events the runner reads, as a chosen sink's filter
 * passes them. The source is wrapped (`wrap`) so every page read is offered to the
 * tap's listeners; with none listening that costs one size check per page.
 *
 * Lanes that fall behind read on their own, so the same event can be read twice:
 * the tap shows each id once (the last `seenKept` ids remembered).
 */
import { EventPattern } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type * as Pipeline from "../Pipeline.ts"
import type * as Api from "./Api.ts"

const seenKept = 10_000
/** Events a slow listener may fall behind by before the oldest are dropped. */
const listenerBuffer = 1_000

type Listener = (event: Api.TapEvent) => void

export class Tap {
  private readonly listeners = new Set<Listener>()
  private readonly seen = new Set<string>()

  /** The source, each page it reads also offered to the tap. */
  wrap(source: Pipeline.Source): Pipeline.Source {
    return {
      read: (start, follow, onCaughtUp) =>
        Stream.mapArray(source.read(start, follow, onCaughtUp), (elements) => {
          this.publish(elements)
          return elements
        })
    }
  }

  publish(elements: ReadonlyArray<Pipeline.Element>): void {
    if (this.listeners.size === 0) return
    for (const element of elements) {
      if (element._tag !== "Event") continue
      const event = element.event as unknown as Record<string, any>
      const id = String(event.id)
      if (this.seen.has(id)) continue
      this.seen.add(id)
      if (this.seen.size > seenKept) this.seen.delete(this.seen.values().next().value!)
      const tapped: Api.TapEvent = {
        id,
        type: String(event.event),
        createdAt: String(event.created_at),
        organizationId: typeof event.organization_id === "string" ? event.organization_id : null,
        event
      }
      for (const listener of this.listeners) listener(tapped)
    }
  }

  /**
   * The events from now on that `accepts` (a sink's filter) and `pattern` (when
   * given) pass, for as long as the stream is read.
   */
  listen(accepts: Pipeline.Accepts, pattern: string | undefined): Stream.Stream<Api.TapEvent> {
    return Stream.callback<Api.TapEvent>(
      (queue) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            const listener: Listener = (e) => {
              if (!accepts(e.type, e.event)) return
              if (pattern !== undefined && !EventPattern.matchesName(pattern, e.type)) return
              Queue.offerUnsafe(queue, e)
            }
            this.listeners.add(listener)
            return listener
          }),
          (listener) => Effect.sync(() => this.listeners.delete(listener))
        ),
      { bufferSize: listenerBuffer, strategy: "sliding" }
    )
  }
}
