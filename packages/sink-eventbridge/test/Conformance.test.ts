import { EventBridgeStandIn } from "@workos-relay/testing"
import * as SinkConformance from "@workos-relay/testing/SinkConformance"
import * as Effect from "effect/Effect"
import { definition } from "../src/index.ts"

// The conformance suite every sink must pass, against the EventBridge stand-in with
// 30% of entries failing at random, so retries are part of what it checks.
let standIn: EventBridgeStandIn.StandIn | undefined

SinkConformance.suite({
  definition,
  config: () =>
    Effect.gen(function* () {
      standIn = yield* EventBridgeStandIn.make({ seed: 11 })
      standIn.setFaults({ internalFailureRatio: 0.3 })
      return {
        region: "us-east-1",
        eventBus: "workos-events",
        endpoint: standIn.url,
        credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" }
      }
    }),
  badConfigs: [
    { config: { eventBus: "default", source: "aws.foo" }, path: "source" },
    { config: { eventBus: "" }, path: "eventBus" },
    { config: { eventBus: "default", detailType: "{{type}}" }, path: "detailType" },
    {
      config: { eventBus: "default", credentials: { accessKeyId: "AKID" } },
      path: "credentials.secretAccessKey"
    }
  ],
  received: () =>
    Effect.sync(() => (standIn?.events ?? []).map((event) => JSON.parse(event.detail).id))
})
