/**
 * The `console` section: the operator console on the HTTP server (see `console/Routes.ts`).
 *
 * ```yaml
 * http: { address: 127.0.0.1:9464 }
 * console:
 *   token: ${RELAY_CONSOLE_TOKEN}   # required unless http.address is a loopback address
 * ```
 */
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { parseAddress } from "./Checks.ts"
import { isRecord } from "./Guards.ts"
import type { Problem } from "./Problem.ts"

export const Console = Schema.Struct({
  token: Schema.optionalKey(
    Schema.Redacted(Schema.String).annotate({
      description:
        "A bearer token the console asks for (required when http.address is not a loopback address)"
    })
  )
})
export type ConsoleFile = typeof Console.Type

/** The console's settings: absent, no console. */
export interface ConsoleSettings {
  readonly token: Redacted.Redacted<string> | undefined
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can reach them. */
export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host)

/** The checks the Schema cannot make: a server to serve on, a token off loopback. */
export const checkConsole = (raw: Record<string, unknown>, problems: Array<Problem>) => {
  const section = raw.console
  if (section === undefined || section === null) return
  if (!isRecord(raw.http) || typeof raw.http.address !== "string") {
    problems.push({
      path: "console",
      message: 'the console needs the HTTP server: set http.address (e.g. "127.0.0.1:9464")'
    })
    return
  }
  const token = isRecord(section) ? section.token : undefined
  if (typeof token === "string" && token.trim() === "")
    problems.push({
      path: "console.token",
      message: "an empty token (is its environment variable set?)"
    })
  const address = parseAddress(raw.http.address, [])
  if (address !== undefined && !isLoopback(address.host) && token === undefined)
    problems.push({
      path: "console.token",
      message: `the console can retry and drop dead letters: on a non-loopback address (${address.host}) it needs a token; set console.token, or bind http.address to 127.0.0.1`
    })
}

export const consoleSettings = (file: ConsoleFile): ConsoleSettings => ({ token: file.token })
