/**
 * The `webhooks` section: the webhook doorbell (see `webhooks/Ingress.ts`).
 *
 * ```yaml
 * http: { address: 0.0.0.0:9464 }
 * webhooks:
 *   secrets: ["${WORKOS_WEBHOOK_SECRET}"]   # several while rotating
 *   path: /webhooks/workos                  # default
 *   tolerance: 3m                           # default, as WorkOS's SDK
 *   visibilityDelay: 3s                     # poll again this long after a ring
 *   debounce: 250ms                         # rings within one step share their polls
 *   allowedSources: workos                  # or a list of addresses / CIDR ranges; default: any
 *   trustedProxies: [10.0.0.0/8]            # whose X-Forwarded-For is believed
 *   overdueAfter: 5m                        # an announced event not read by then is reported
 * ```
 */
import * as Schema from "effect/Schema"
import type { Settings } from "../webhooks/Ingress.ts"
import { parseRange, workosAddresses } from "../webhooks/Ingress.ts"
import { isRecord } from "./Guards.ts"
import type { Problem } from "./Problem.ts"
import { MaxWait, ms, PositiveDuration } from "./Values.ts"

export const Webhooks = Schema.Struct({
  secrets: Schema.Array(Schema.Redacted(Schema.String)).annotate({
    description:
      'The webhook endpoint\'s secrets (WorkOS dashboard); several while one is rotated: ["${WORKOS_WEBHOOK_SECRET}"]'
  }),
  path: Schema.optionalKey(
    Schema.String.annotate({
      description: "Where WorkOS posts webhooks (default /webhooks/workos)"
    })
  ),
  tolerance: Schema.optionalKey(PositiveDuration),
  visibilityDelay: Schema.optionalKey(MaxWait),
  debounce: Schema.optionalKey(MaxWait),
  allowedSources: Schema.optionalKey(
    Schema.Union([Schema.Literal("workos"), Schema.Array(Schema.String)]).annotate({
      description:
        '"workos" (WorkOS\'s published addresses) or a list of addresses and CIDR ranges; default: any'
    })
  ),
  trustedProxies: Schema.optionalKey(Schema.Array(Schema.String)),
  overdueAfter: Schema.optionalKey(PositiveDuration)
})
export type WebhooksFile = typeof Webhooks.Type

export const webhookDefaults = {
  path: "/webhooks/workos",
  tolerance: 180_000,
  visibilityDelay: 3_000,
  debounce: 250,
  overdueAfter: 300_000
} as const

const reserved = ["/healthz", "/readyz", "/metrics"]

/** The checks the Schema cannot make: a server to listen on, a path, secrets, addresses. */
export const checkWebhooks = (raw: Record<string, unknown>, problems: Array<Problem>) => {
  const section = raw.webhooks
  if (!isRecord(section)) return
  if (!isRecord(raw.http) || raw.http.address === undefined)
    problems.push({
      path: "webhooks",
      message: 'webhooks need the HTTP server: set http.address (e.g. "0.0.0.0:9464")'
    })
  if (Array.isArray(section.secrets)) {
    if (section.secrets.length === 0)
      problems.push({
        path: "webhooks.secrets",
        message: "no secret: give the endpoint's secret from the WorkOS dashboard"
      })
    section.secrets.forEach((secret, i) => {
      if (typeof secret === "string" && secret.trim() === "")
        problems.push({
          path: `webhooks.secrets[${i}]`,
          message: "an empty secret (is its environment variable set?)"
        })
    })
  }
  const path = section.path
  if (typeof path === "string") {
    if (!/^\/[A-Za-z0-9._~\-/]*$/.test(path))
      problems.push({
        path: "webhooks.path",
        message: `expected a path such as "/webhooks/workos", got ${JSON.stringify(path)}`
      })
    else if (reserved.includes(path))
      problems.push({
        path: "webhooks.path",
        message: `${path} is the runner's own; choose another`
      })
  }
  for (const key of ["allowedSources", "trustedProxies"] as const) {
    const list = section[key]
    if (!Array.isArray(list)) continue
    list.forEach((entry, i) => {
      if (typeof entry === "string" && parseRange(entry) === undefined)
        problems.push({
          path: `webhooks.${key}[${i}]`,
          message: `expected an IP address or a CIDR range such as "10.0.0.0/8", got ${JSON.stringify(entry)}`
        })
    })
  }
}

/** The settings of a section with no problems, defaults filled in. */
export const webhookSettings = (file: WebhooksFile): Settings => ({
  path: (file.path ?? webhookDefaults.path) as `/${string}`,
  secrets: file.secrets,
  tolerance: ms(file.tolerance, webhookDefaults.tolerance),
  visibilityDelay: ms(file.visibilityDelay, webhookDefaults.visibilityDelay),
  debounce: ms(file.debounce, webhookDefaults.debounce),
  allowedSources:
    file.allowedSources === "workos"
      ? workosAddresses
      : file.allowedSources === undefined
        ? undefined
        : file.allowedSources,
  trustedProxies: file.trustedProxies ?? [],
  overdueAfter: ms(file.overdueAfter, webhookDefaults.overdueAfter)
})
