import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as SinkConformance from "@workos-relay/testing/SinkConformance"
import * as Effect from "effect/Effect"
import { definition } from "../src/index.ts"

/** A receiver on 127.0.0.1 that records event ids and, now and then, answers 503 or 429. */
const received: Array<string> = []
let requests = 0
const receiver = Effect.acquireRelease(
  Effect.promise(async () => {
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (chunk) => (body += chunk))
      req.on("end", () => {
        requests++
        if (requests % 7 === 0) return res.writeHead(503).end("busy")
        if (requests % 11 === 0) return res.writeHead(429, { "retry-after": "0" }).end()
        received.push(JSON.parse(body).id)
        res.writeHead(204).end()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    return server
  }),
  (server) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
)

SinkConformance.suite({
  definition,
  config: () =>
    Effect.map(receiver, (server) => ({
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
      secret: "whsec_conformance"
    })),
  received: () => Effect.sync(() => [...received]),
  badConfigs: [
    { config: { url: "ftp://example.test", secret: "s" }, path: "url" },
    { config: { url: "https://example.test" }, path: "secret" },
    { config: { url: "https://example.test", secret: "s", timeoutMs: 5 }, path: "timeoutMs" },
    { config: { url: "https://example.test", secret: "s", retries: 3 }, path: "retries" }
  ]
})
