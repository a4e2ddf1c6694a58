/** Ports on 127.0.0.1. */
import * as net from "node:net"

/**
 * A port that was free a moment ago: for a server to listen on, or, left unused, an
 * address where nothing answers (connecting is refused).
 */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
