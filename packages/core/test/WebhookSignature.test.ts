import { describe, expect, it } from "@effect/vitest"
import { WorkOS as WorkOSNode } from "@workos-inc/node"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { Webhook } from "../src/index.ts"

const sdk = new WorkOSNode("sk_test_webhooks")
const body = '{"id":"event_01","event":"user.created","data":{}}'

describe("Webhook.verifySignature", () => {
  it.live("accepts any of several secrets (rotation); the old one alone fails after rotation", () =>
    Effect.gen(function* () {
      const t = Date.now()
      const byNew = `t=${t}, v1=${yield* Effect.promise(() => sdk.webhooks.computeSignature(t, body, "whsec_new"))}`
      const secrets = [Redacted.make("whsec_old"), Redacted.make("whsec_new")]
      yield* Webhook.verifySignature({ payload: body, signature: byNew, secrets })
      const refused = yield* Effect.flip(
        Webhook.verifySignature({ payload: body, signature: byNew, secrets: ["whsec_old"] })
      )
      expect(refused._tag).toBe("WebhookSignatureError")
      // A body that is not an event is not its concern: only the signature is.
      const text = "not json"
      const signed = yield* Webhook.sign({ payload: text, secret: "whsec_new" })
      yield* Webhook.verifySignature({ payload: text, signature: signed, secrets })
      const stale = yield* Webhook.sign({
        payload: text,
        secret: "whsec_new",
        timestamp: t - 600_000
      })
      expect(
        (yield* Effect.flip(Webhook.verifySignature({ payload: text, signature: stale, secrets })))
          ._tag
      ).toBe("WebhookTimestampError")
    })
  )
})
