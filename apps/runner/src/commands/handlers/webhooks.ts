/**
 * `workos-relay webhooks register --url`: the WorkOS webhook endpoint of the doorbell.
 * What the command does; its flags and help are in ../webhooks.ts, which loads
 * this module only when the command runs (`--help` does without it).
 */
import * as Effect from "effect/Effect"
import { load } from "../../config/Load.ts"
import { fetchTypes } from "../../Runner.ts"
import * as Register from "../../webhooks/Register.ts"
import { errorLogsOnly, out, RunFailed, UsageError } from "../shared.ts"

export const register = ({
  config: file,
  url
}: {
  readonly config: string
  readonly url: string
}) =>
  errorLogsOnly(
    Effect.gen(function* () {
      const config = yield* load(file)
      if (config.source.type !== "workos")
        return yield* Effect.fail(
          new UsageError({ reason: "webhooks register needs source.type: workos" })
        )
      const parsed = URL.parse(url)
      if (parsed === null || (parsed.protocol !== "https:" && parsed.protocol !== "http:"))
        return yield* Effect.fail(
          new UsageError({ reason: `--url: expected an https URL, got ${JSON.stringify(url)}` })
        )
      const events = Register.webhookTypes(fetchTypes(config.sinks, config.source.events))
      if (events.length === 0)
        return yield* Effect.fail(
          new UsageError({
            reason: "none of the event types the sinks take is sent by webhook: nothing to register"
          })
        )
      const done = yield* Register.register({
        baseUrl: config.source.baseUrl,
        apiKey: config.source.apiKey,
        url,
        events
      }).pipe(Effect.mapError((e) => new RunFailed({ reason: e.message })))
      yield* out(
        `${done.action} webhook endpoint ${done.id} for ${url} (${done.events.length} event types)`
      )
      if (done.secret !== undefined)
        yield* out(
          `its secret (shown once; keep it in WORKOS_WEBHOOK_SECRET, listed in webhooks.secrets): ${done.secret}`
        )
    })
  )
