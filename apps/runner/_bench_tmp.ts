import { EventStream, WorkOS } from "@workos-relay/core"
import { Effect, Layer, Redacted, Stream } from "effect"
import { FetchHttpClient } from "effect/http"
import { NodeHttpClient } from "@effect/platform-node"
const url = process.argv[2]!
const which = process.argv[3]!
const http = which === "fetch" ? FetchHttpClient.layer : which === "undici" ? NodeHttpClient.layerUndici : NodeHttpClient.layerNodeHttp
const layer = WorkOS.layer({ baseUrl: url, apiKey: Redacted.make("sk_test_bench") }).pipe(Layer.provide(http))
const t = performance.now()
const n = await Effect.runPromise(EventStream.make({ start: "earliest" }).pipe(Stream.runCount, Effect.provide(layer)))
console.log(which, n, (performance.now() - t).toFixed(0), "ms", (process.resourceUsage().maxRSS/1024).toFixed(0), "MiB")
