/** `workos-relay webhooks register --url`: the WorkOS webhook endpoint of the doorbell. */
import { Command, Flag } from "effect/cli"
import { configFlag, lazy } from "./shared.ts"

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
  lazy(
    () => import("./handlers/webhooks.ts"),
    (m) => m.register
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
