/**
 * The runner's one HTTP server: effect/http's `HttpRouter` on `NodeHttpServer`.
 *
 * Each feature contributes its routes as a layer (`HttpRouter.add`/`addAll`), and
 * `serve` runs whichever layers it is given on one address: health and metrics
 * (`Observability.routes`), the webhook doorbell (`webhooks/Ingress.ts`), and
 * whatever comes next, without this module knowing them.
 */
import * as Http from "node:http"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { serverMissing } from "./Package.ts"

/**
 * effect's Node HTTP server, from the optional `@effect/platform-node` (./Package.ts):
 * the module, not the package index (the index also loads cluster, workers and redis).
 */
const nodeHttpServer = Effect.tryPromise({
  try: () => import("@effect/platform-node/NodeHttpServer"),
  catch: (error) =>
    new Error(
      (error as { code?: string }).code === "ERR_MODULE_NOT_FOUND"
        ? serverMissing
        : `cannot load @effect/platform-node: ${(error as Error).message}`
    )
})

/** Routes contributed by one feature: a layer that adds them to the router. */
export type Routes = Layer.Layer<never, never, HttpRouter.HttpRouter>

/** What any path no route takes gets: a 404 naming the paths that exist. */
export const notFound = (paths: ReadonlyArray<string>): Routes =>
  HttpRouter.add(
    "*",
    "*",
    HttpServerResponse.text(`not found: try ${listed(paths)}\n`, {
      status: 404,
      contentType: "text/plain"
    })
  )

const listed = (paths: ReadonlyArray<string>): string =>
  paths.length <= 1
    ? (paths[0] ?? "/")
    : `${paths.slice(0, -1).join(", ")} or ${paths[paths.length - 1]}`

/**
 * Serves `routes` on host:port for the scope's life; returns the bound port (port 0:
 * an ephemeral one). Open requests get a second to finish when the scope closes.
 */
export const serve = (
  routes: Routes,
  address: { readonly host: string; readonly port: number }
): Effect.Effect<number, Error, Scope.Scope> =>
  Effect.flatMap(nodeHttpServer, (NodeHttpServer) =>
    HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
      Layer.provideMerge(
        NodeHttpServer.layer(() => Http.createServer(), {
          port: address.port,
          host: address.host,
          gracefulShutdownTimeout: "1 second"
        })
      ),
      Layer.build,
      Effect.map((context) => {
        const bound = Context.get(context, HttpServer.HttpServer).address
        return "port" in bound ? (bound.port as number) : address.port
      }),
      Effect.mapError(
        (error) =>
          new Error(
            `cannot listen on ${address.host}:${address.port}: ${(error as { message?: string }).message ?? String(error)}`
          )
      )
    )
  )
