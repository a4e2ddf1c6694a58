/** `workos-relay webhooks register --url`: the WorkOS webhook endpoint of the doorbell. */
import { Command, Flag } from "effect/cli"
import * as Effect from "effect/Effect"
import { load } from "../config/Load.ts"
import { fetchTypes } from "../Runner.ts"
import { register, webhookTypes } from "../webhooks/Register.ts"
import { configFlag, errorLogsOnly, out, RunFailed, UsageError } from "./shared.ts"

const registerCommand = Command.make(
  "register",
  {
    config: configFlag,
    url: Flag.String("url").pipe(
      Flag.withDescription(
        "The public https URL WorkOS posts to (your proxy, then webhooks.path), e.g. https://relay.example.com/webhooks/workos"
      )
    )
  },
  ({ config: file, url }) =>
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
        const events = webhookTypes(fetchTypes(config.sinks, config.source.events))
        if (events.length === 0)
          return yield* Effect.fail(
            new UsageError({
              reason:
                "none of the event types the sinks take is sent by webhook: nothing to register"
            })
          )
        const done = yield* register({
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
).pipe(
  Command.withDescription(
    "Create or update the WorkOS webhook endpoint for --url, subscribed to the types the sinks take that WorkOS sends by webhook"
  )
)

export const webhooks = Command.make("webhooks").pipe(
  Command.withDescription("The webhook doorbell's WorkOS endpoint"),
  Command.withSubcommands([registerCommand])
)
