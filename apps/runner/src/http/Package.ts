/**
 * The runner's HTTP server (`http`: health, metrics, the webhook doorbell, the console)
 * is effect's Node server from `@effect/platform-node`, an optional peer of the runner.
 * That package declares `redis` as a required peer, which npm then installs (17 MB)
 * though nothing here talks to Redis; so it is installed only by those who serve HTTP.
 */
import { createRequire } from "node:module"

const require = createRequire(import.meta.url)
// From src/http/ and dist/http/ alike: the runner's own package.json.
const peers: Record<string, string> = require("../../package.json").peerDependencies

export const serverPackage = "@effect/platform-node"

/** `npm install @effect/platform-node@<the range the runner is built against>`. */
export const installCommand = `npm install ${serverPackage}@${peers[serverPackage]}`

export const serverMissing = `the HTTP server (health, metrics, webhooks, console) comes with ${serverPackage}: ${installCommand}`

/** Whether the server's package can be loaded, without loading it. */
export const serverInstalled = (): boolean => {
  try {
    require.resolve(`${serverPackage}/NodeHttpServer`)
    return true
  } catch {
    return false
  }
}
