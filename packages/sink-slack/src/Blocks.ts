/**
 * The encoder: one WorkOS event -> one Slack message (Block Kit blocks and a
 * plain-text fallback). Pure: no I/O, the same event always gives the same message.
 *
 * Every message has the same shape, so a channel reads at a glance:
 *
 *   header    emoji + what happened ("Password sign-in failed")
 *   section   mentions + one line: who or what, where from
 *   section   what went wrong / what changed / who impersonated (when it applies)
 *   section   the key facts as fields (at most 10)
 *   context   actor, IP address, user agent
 *   context   event id, type and time
 *   actions   a button to the WorkOS dashboard (when configured)
 *
 * Formatting follows the event families and is specialised where it matters:
 * authentication failures show the error code and message; updates show what
 * changed; API keys show nothing beyond the obfuscated value. Every payload value
 * is escaped, and every text is cut to Slack's limits without breaking markup.
 */
import { Event, type Sink } from "@workos-relay/core"
import type { Piece } from "./internal/Mrkdwn.ts"
import * as Mrkdwn from "./internal/Mrkdwn.ts"
import * as Template from "./Template.ts"

// ---------------------------------------------------------------------------
// Block Kit (the subset we send)

export interface PlainText {
  readonly type: "plain_text"
  readonly text: string
  readonly emoji?: boolean
}
export interface MrkdwnText {
  readonly type: "mrkdwn"
  readonly text: string
  /** `true`: Slack does not auto-link URLs and channel names or parse bare `@here`. */
  readonly verbatim?: boolean
}
export interface HeaderBlock {
  readonly type: "header"
  readonly text: PlainText
}
export interface SectionBlock {
  readonly type: "section"
  readonly text?: MrkdwnText
  readonly fields?: ReadonlyArray<MrkdwnText>
}
export interface ContextBlock {
  readonly type: "context"
  readonly elements: ReadonlyArray<MrkdwnText | PlainText>
}
export interface DividerBlock {
  readonly type: "divider"
}
export interface Button {
  readonly type: "button"
  readonly text: PlainText
  readonly url: string
  readonly action_id: string
}
export interface ActionsBlock {
  readonly type: "actions"
  readonly elements: ReadonlyArray<Button>
}
export type Block = HeaderBlock | SectionBlock | ContextBlock | DividerBlock | ActionsBlock

/** What `chat.postMessage` gets besides the channel. */
export interface Message {
  /** The plain-text fallback, shown in notifications and where blocks cannot be. */
  readonly text: string
  readonly blocks: ReadonlyArray<Block>
}

/** Slack's limits (https://docs.slack.dev/reference/block-kit/blocks), and our budget for the whole message. */
export const limits = {
  blocks: 50,
  headerText: 150,
  sectionText: 3000,
  fields: 10,
  fieldText: 2000,
  contextElements: 10,
  /** Slack truncates `text` far later (40,000); notifications show much less, 4,000 is its advice. */
  text: 4000,
  buttonText: 75,
  url: 3000,
  /**
   * The whole JSON payload (text + blocks), in UTF-8 bytes. Slack publishes no single
   * figure; messages above ~16 KB are refused in practice, so we stay well under.
   */
  payloadBytes: 12_000
} as const

// ---------------------------------------------------------------------------
// Options

/** How one event's message is dressed, as routing decided. */
export interface Options {
  /** Mention markup to put before the summary (`<!here>`, `<@U024BE7LH>`, `<!subteam^S0614TZR7>`). */
  readonly mentions?: ReadonlyArray<string>
  /** Templates replacing the header and/or the summary line. */
  readonly template?: {
    readonly header?: Template.Template
    readonly text?: Template.Template
  }
  /**
   * A typed override for library users: a header (plain text) and/or a summary
   * (mrkdwn pieces: strings are trusted markup, `Blocks.value(...)` escapes).
   */
  readonly override?: Override
  /** The dashboard link: a base URL (`/events/<id>` is added) or a `{{path}}` template. */
  readonly dashboardUrl?: string
  /**
   * The event breaks the spec here (`Sink.mismatchOf`): it gets the generic message,
   * as an event of a type the spec does not know does, saying where.
   */
  readonly mismatch?: Sink.Mismatch
}

export interface Override {
  readonly header?: string
  readonly summary?: ReadonlyArray<Piece>
}

export { bold, code, escapeText, type Piece, value } from "./internal/Mrkdwn.ts"

// ---------------------------------------------------------------------------
// Words

const WORDS: Record<string, string> = {
  api: "API",
  byok: "BYOK",
  dek: "DEK",
  dsync: "directory",
  id: "ID",
  idp: "IdP",
  ids: "IDs",
  ip: "IP",
  kek: "KEK",
  kv: "KV",
  mfa: "MFA",
  oauth: "OAuth",
  saml: "SAML",
  sso: "SSO",
  url: "URL"
}

/** `organization_domain` -> `organization domain`, `api_key` -> `API key`. */
const words = (name: string): string =>
  name
    .split("_")
    .map((w) => WORDS[w] ?? w)
    .join(" ")

const capitalise = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1)

const METHODS: Record<string, string> = {
  email_verification: "Email verification",
  magic_auth: "Magic Auth",
  mfa: "MFA",
  oauth: "OAuth",
  passkey: "Passkey",
  password: "Password",
  sso: "SSO",
  reauthentication: "Re-authentication"
}

const TITLES: Record<string, string> = {
  "action.authentication.denied": "Sign-in denied by an Action",
  "action.user_registration.denied": "Sign-up denied by an Action",
  "authentication.radar_risk_detected": "Radar risk detected",
  "authentication.email_verification_failed": "Email verification failed",
  "authentication.email_verification_succeeded": "Email verified",
  "authentication.reauthentication_succeeded": "Re-authentication succeeded",
  "connection.saml_certificate_renewal_required": "SAML certificate renewal required",
  "connection.saml_certificate_renewed": "SAML certificate renewed",
  "vault.names.listed": "Vault names listed"
}

const AUTH = /^authentication\.([a-z_]+?)_(failed|succeeded|started|timed_out)$/

/** A short human title for a type name: `dsync.user.updated` -> `Directory user updated`. */
export const title = (type: string): string => {
  let cached = titleCache.get(type)
  if (cached === undefined) {
    cached = makeTitle(type)
    titleCache.set(type, cached)
  }
  return cached
}

const titleCache = new Map<string, string>()

const makeTitle = (type: string): string => {
  const fixed = TITLES[type]
  if (fixed !== undefined) return fixed
  const auth = AUTH.exec(type)
  if (auth !== null) {
    const method = METHODS[auth[1]!] ?? capitalise(words(auth[1]!))
    return `${method} sign-in ${words(auth[2]!)}`
  }
  return capitalise(type.split(".").map(words).join(" "))
}

type Tone = "alert" | "warning" | "good" | "removed" | "added" | "changed" | "read" | "info"

const EMOJI: Record<Tone, string> = {
  alert: ":rotating_light:",
  warning: ":warning:",
  good: ":white_check_mark:",
  removed: ":no_entry_sign:",
  added: ":heavy_plus_sign:",
  changed: ":pencil2:",
  read: ":eyes:",
  info: ":information_source:"
}

const tone = (type: string): Tone => {
  const action = type.slice(type.lastIndexOf(".") + 1)
  if (/failed|denied|risk_detected|timed_out/.test(action)) {
    return /^(authentication|action|radar)\./.test(type) ? "alert" : "warning"
  }
  if (/required|needed|expired/.test(action)) return "warning"
  if (/revoked|deleted|deactivated|disconnected|removed/.test(action)) return "removed"
  if (/succeeded|activated|verified|completed|approved|accepted|connected|renewed/.test(action)) {
    return "good"
  }
  if (/created|added|issued/.test(action)) return "added"
  if (/updated|switched|refreshed/.test(action)) return "changed"
  if (/read|decrypted|listed/.test(action)) return "read"
  return "info"
}

// ---------------------------------------------------------------------------
// Reading an event

type Json = Record<string, unknown>

const isObject = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v)
const str = (v: unknown): string | undefined =>
  typeof v === "string" && v.length > 0 ? v : undefined

/** The payload: an object for every event but one that breaks the spec, which may hold anything. */
const dataOf = (event: Event.Any): Json => (isObject(event.data) ? event.data : {})

/** Keys that are never facts: envelope noise, blobs, and anything secret. */
const SKIP = new Set([
  "object",
  "created_at",
  "updated_at",
  "raw_attributes",
  "custom_attributes",
  "metadata",
  "previous_attributes",
  "key_context",
  "emails",
  "role",
  "ip_address",
  "user_agent",
  "error",
  "impersonator",
  "actor_id",
  "actor_name",
  "actor_source",
  "verification_prefix",
  "verification_token"
])
/** Secrets by name; an API key's `obfuscated_value` and a token's suffix are meant to be shown. */
const SECRET = /(secret|password|private|credential|(^|_)token$|(^|_)value$|(^|_)key$)/
const SHOWN = new Set(["obfuscated_value", "token_suffix", "default_value"])
const isShown = (key: string): boolean => !SKIP.has(key) && (SHOWN.has(key) || !SECRET.test(key))

/** Keys first in this order, then the rest as WorkOS sent them. */
const PRIORITY = [
  "name",
  "email",
  "domain",
  "state",
  "status",
  "verdict",
  "reason",
  "connection_type",
  "type",
  "auth_method",
  "provider_slug",
  "slug",
  "obfuscated_value",
  "organization_id",
  "user_id",
  "directory_id",
  "connection_id",
  "id"
]

/** What an API key event may show, and nothing else. */
const API_KEY_FIELDS = [
  "name",
  "obfuscated_value",
  "owner",
  "permissions",
  "expires_at",
  "last_used_at",
  "id"
]

/** The payload the facts come from; a few events wrap the interesting object. */
const factSource = (event: Event.Any): Json => {
  const data = dataOf(event)
  if (event.event.startsWith("api_key.")) {
    return Object.fromEntries(API_KEY_FIELDS.filter((k) => k in data).map((k) => [k, data[k]]))
  }
  if (
    event.event === "organization_domain.verification_failed" &&
    isObject(data.organization_domain)
  ) {
    return { reason: data.reason, ...data.organization_domain }
  }
  if (event.event.startsWith("dsync.group.user_") && isObject(data.user) && isObject(data.group)) {
    return {
      user: str(data.user.name) ?? str(data.user.email) ?? data.user.id,
      email: data.user.email,
      user_id: data.user.id,
      group: data.group.name,
      group_id: data.group.id,
      directory_id: data.directory_id,
      organization_id: data.group.organization_id
    }
  }
  return data
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/
const ID = /^[a-z][a-z0-9_]*_[0-9A-Za-z]{10,}$/

/** A Slack date token: shown in the reader's time zone, falling back to UTC text. */
const dateToken = (iso: string): string | undefined => {
  // A string only (an event that breaks the spec may say anything): `Date.parse(42)` is 2042.
  if (typeof iso !== "string") return undefined
  const ms = Date.parse(iso)
  if (!Number.isFinite(ms)) return undefined
  const fallback = new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, " UTC")
  return `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} {time_secs}|${fallback}>`
}

/** A value as mrkdwn pieces: ids in code, times as date tokens, lists joined. */
const formatValue = (key: string, v: unknown, budget: number): ReadonlyArray<Piece> | undefined => {
  if (v === null || v === undefined || v === "") return undefined
  if (typeof v === "boolean") return [v ? "yes" : "no"]
  if (typeof v === "number") return [Mrkdwn.value(String(v))]
  if (typeof v === "string") {
    if (ISO.test(v)) {
      const token = dateToken(v)
      if (token !== undefined) return [token]
    }
    const clipped = Mrkdwn.clip(v, budget)
    return [
      ID.test(v) || key === "id" || key.endsWith("_id") || key === "obfuscated_value"
        ? Mrkdwn.code(clipped)
        : Mrkdwn.value(clipped)
    ]
  }
  if (Array.isArray(v)) {
    const items = v
      .map((item) =>
        isObject(item)
          ? (str(item.domain) ??
            str(item.slug) ??
            str(item.value) ??
            str(item.name) ??
            str(item.email))
          : typeof item === "string" || typeof item === "number"
            ? String(item)
            : undefined
      )
      .filter((item): item is string => item !== undefined)
    if (items.length === 0) return undefined
    return [Mrkdwn.value(Mrkdwn.clip(items.join(", "), budget))]
  }
  return undefined
}

interface Fact {
  readonly label: string
  readonly value: ReadonlyArray<Piece>
}

const LABELS: Record<string, string> = { obfuscated_value: "Key", idp_id: "IdP ID", id: "ID" }

const label = (key: string, parent?: string): string => {
  if (parent === undefined) return LABELS[key] ?? capitalise(words(key))
  const child = key.startsWith(`${parent}_`) ? key.slice(parent.length + 1) : key
  return capitalise(`${words(parent)} ${words(child)}`)
}

/** The key facts: scalar fields, lists, and one level of nested objects, in priority order. */
const facts = (source: Json, budget: number): Array<Fact> => {
  const keys = Object.keys(source).filter(isShown)
  keys.sort((a, b) => rank(a) - rank(b))
  const out: Array<Fact> = []
  for (const key of keys) {
    const v = source[key]
    if (isObject(v)) {
      for (const [child, inner] of Object.entries(v)) {
        if (!isShown(child)) continue
        const value = formatValue(child, inner, budget)
        if (value !== undefined) out.push({ label: label(child, key), value })
      }
      continue
    }
    const value = formatValue(key, v, budget)
    if (value !== undefined) out.push({ label: label(key), value })
  }
  return out
}

const rank = (key: string): number => {
  const i = PRIORITY.indexOf(key)
  return i === -1 ? PRIORITY.length : i
}

/** Who or what the event is about, for the summary line. */
const subject = (event: Event.Any): ReadonlyArray<Piece> => {
  const source = factSource(event)
  const data = dataOf(event)
  const person = [str(source.first_name), str(source.last_name)].filter(Boolean).join(" ")
  const main =
    str(source.name) ??
    str(source.user) ??
    (person || undefined) ??
    str(source.email) ??
    str(source.domain) ??
    str(source.slug) ??
    str(source.kv_name) ??
    str(source.key_name) ??
    str(source.login_hint) ??
    str(source.provider_slug) ??
    str(source.key_provider)
  const pieces: Array<Piece> = []
  if (main !== undefined) {
    pieces.push(Mrkdwn.bold(Mrkdwn.clip(main, 200)))
    const email = str(source.email)
    if (email !== undefined && email !== main)
      pieces.push(" (", Mrkdwn.value(Mrkdwn.clip(email, 200)), ")")
  } else {
    const id =
      str(source.id) ??
      str(data.agent_registration_id) ??
      str(data.group_id) ??
      (isObject(data.connection) ? str(data.connection.id) : undefined) ??
      str(data.user_id)
    if (id !== undefined) pieces.push(Mrkdwn.code(Mrkdwn.clip(id, 200)))
  }
  const org = organizationId(event)
  if (org !== undefined && org !== str(source.id)) {
    pieces.push(" in ", Mrkdwn.code(Mrkdwn.clip(org, 100)))
  }
  const ip = str(data.ip_address)
  if (ip !== undefined) pieces.push(" from ", Mrkdwn.value(Mrkdwn.clip(ip, 100)))
  return pieces
}

/** The organization an event belongs to, wherever its payload keeps it. */
export const organizationId = (event: Event.Any): string | undefined => {
  const data = dataOf(event)
  if (str(data.organization_id) !== undefined) return data.organization_id as string
  for (const key of [
    "sso",
    "connection",
    "organization_domain",
    "group",
    "user",
    "claimed_by",
    "owner"
  ]) {
    const inner = data[key]
    if (isObject(inner) && str(inner.organization_id) !== undefined)
      return inner.organization_id as string
  }
  if (isObject(data.owner) && data.owner.type === "organization") return str(data.owner.id)
  if (data.object === "organization") return str(data.id)
  return undefined
}

/** Sections that only some events have: an error, what changed, an impersonation. */
const extraSections = (event: Event.Any, budget: number): Array<ReadonlyArray<Piece>> => {
  const data = dataOf(event)
  const sections: Array<ReadonlyArray<Piece>> = []
  const error = isObject(data.error) ? data.error : undefined
  if (error !== undefined) {
    const pieces: Array<Piece> = [":x: *Error*"]
    if (str(error.code)) pieces.push(" ", Mrkdwn.code(Mrkdwn.clip(error.code as string, 200)))
    if (str(error.message))
      pieces.push("\n", Mrkdwn.value(Mrkdwn.clip(error.message as string, budget * 2)))
    sections.push(pieces)
  } else if (str(data.error_code) !== undefined) {
    const pieces: Array<Piece> = [
      ":x: *Error* ",
      Mrkdwn.code(Mrkdwn.clip(data.error_code as string, 200))
    ]
    if (str(data.error_reason))
      pieces.push("\n", Mrkdwn.value(Mrkdwn.clip(data.error_reason as string, budget)))
    if (str(data.provider_error)) {
      pieces.push("\n*Provider*: ", Mrkdwn.code(Mrkdwn.clip(data.provider_error as string, 200)))
      if (str(data.provider_error_description)) {
        pieces.push(
          " ",
          Mrkdwn.value(Mrkdwn.clip(data.provider_error_description as string, budget))
        )
      }
    }
    sections.push(pieces)
  }
  const changes = changed(event, budget)
  if (changes !== undefined) sections.push(changes)
  if (isObject(data.impersonator) && str(data.impersonator.email) !== undefined) {
    const pieces: Array<Piece> = [
      ":detective: *Impersonated by* ",
      Mrkdwn.bold(Mrkdwn.clip(data.impersonator.email as string, 200))
    ]
    if (str(data.impersonator.reason))
      pieces.push(": ", Mrkdwn.value(Mrkdwn.clip(data.impersonator.reason as string, budget)))
    sections.push(pieces)
  }
  if (
    event.event === "connection.saml_certificate_renewal_required" &&
    typeof data.days_until_expiry === "number"
  ) {
    const expired = isObject(data.certificate) && data.certificate.is_expired === true
    sections.push([
      expired
        ? ":warning: *The certificate has expired.*"
        : `:hourglass_flowing_sand: *Expires in ${data.days_until_expiry} day${data.days_until_expiry === 1 ? "" : "s"}.*`
    ])
  }
  return sections
}

const MAX_CHANGES = 15

/** "What changed": each previous attribute against its value now. */
const changed = (event: Event.Any, budget: number): ReadonlyArray<Piece> | undefined => {
  const data = dataOf(event)
  const eventContext = event.context as Json | undefined
  // WorkOS puts them in the payload for some types and in the context for others.
  const fromContext = isObject(eventContext?.previous_attributes)
    ? eventContext.previous_attributes
    : {}
  const fromData = isObject(data.previous_attributes) ? data.previous_attributes : {}
  const previous = { ...fromContext, ...fromData }
  // An API key's change log could name fields it must not show.
  const keys = Object.keys(previous).filter((k) =>
    event.event.startsWith("api_key.")
      ? API_KEY_FIELDS.includes(k)
      : isShown(k) || k === "role" || k === "emails" || k === "custom_attributes"
  )
  if (keys.length === 0) return undefined
  const show = (v: unknown): Piece => {
    if (v === null || v === undefined) return "_none_"
    const text = typeof v === "string" ? v : JSON.stringify(v)
    return Mrkdwn.code(Mrkdwn.clip(text, Math.max(20, Math.floor(budget / 2))))
  }
  const pieces: Array<Piece> = [":pencil2: *What changed*"]
  for (const key of keys.slice(0, MAX_CHANGES)) {
    // Keys come from the payload too: escaped like any value.
    pieces.push("\n• ", Mrkdwn.bold(label(key)), ": ", show(previous[key]), " → ", show(data[key]))
  }
  if (keys.length > MAX_CHANGES) pieces.push(`\n_…and ${keys.length - MAX_CHANGES} more_`)
  return pieces
}

/** Actor, IP address and user agent, when the event has them. */
const who = (event: Event.Any): Array<ReadonlyArray<Piece>> => {
  const data = dataOf(event)
  const actor = isObject(event.context?.actor) ? event.context.actor : undefined
  const name = str(actor?.name) ?? str(data.actor_name)
  const id = str(actor?.id) ?? str(data.actor_id)
  const source = str(actor?.source) ?? str(data.actor_source)
  const out: Array<ReadonlyArray<Piece>> = []
  if (name !== undefined || id !== undefined) {
    const pieces: Array<Piece> = [":bust_in_silhouette: "]
    if (name !== undefined) pieces.push(Mrkdwn.bold(Mrkdwn.clip(name, 100)), " ")
    if (id !== undefined) pieces.push(Mrkdwn.code(Mrkdwn.clip(id, 100)), " ")
    if (source !== undefined) pieces.push("via ", Mrkdwn.value(Mrkdwn.clip(source, 50)))
    out.push(pieces)
  }
  const ip = str(data.ip_address)
  if (ip !== undefined) out.push([":globe_with_meridians: ", Mrkdwn.value(Mrkdwn.clip(ip, 100))])
  const agent = str(data.user_agent)
  if (agent !== undefined) out.push([":desktop_computer: ", Mrkdwn.value(Mrkdwn.clip(agent, 300))])
  return out
}

// ---------------------------------------------------------------------------
// Building blocks within limits

const mrkdwn = (pieces: ReadonlyArray<Piece>, limit: number): MrkdwnText => ({
  type: "mrkdwn",
  text: Mrkdwn.render(pieces, limit) || " ",
  verbatim: true
})

const header = (text: string): HeaderBlock => ({
  type: "header",
  text: { type: "plain_text", text: Mrkdwn.plain(text, limits.headerText), emoji: true }
})

const section = (pieces: ReadonlyArray<Piece>): SectionBlock => ({
  type: "section",
  text: mrkdwn(pieces, limits.sectionText)
})

const context = (elements: ReadonlyArray<ReadonlyArray<Piece>>): ContextBlock => ({
  type: "context",
  elements: elements
    .slice(0, limits.contextElements)
    .map((pieces) => mrkdwn(pieces, limits.fieldText))
})

const dashboardLink = (event: Event.Any, base: string): string | undefined => {
  const url = base.includes("{{")
    ? (() => {
        const compiled = Template.compile(base)
        if ("error" in compiled) return undefined
        return compiled.parts
          .map((part) =>
            "literal" in part ? part.literal : encodeURIComponent(Template.lookup(event, part.path))
          )
          .join("")
      })()
    : `${base.replace(/\/+$/, "")}/events/${encodeURIComponent(event.id)}`
  return url !== undefined && url.length <= limits.url ? url : undefined
}

const byteLength = (message: Message): number => {
  const json = JSON.stringify(message)
  // A UTF-16 unit is at most 3 bytes of UTF-8: small messages need no count.
  return json.length * 3 <= limits.payloadBytes ? json.length : Buffer.byteLength(json, "utf8")
}

/** The summary line from a template, or escaped whole when the template's markup would not fit. */
const templated = (
  template: Template.Template,
  event: Event.Any,
  limit: number
): ReadonlyArray<Piece> => {
  const pieces = Template.pieces(template, event)
  const rendered = pieces.map((p) => (typeof p === "string" ? p : Mrkdwn.renderValue(p))).join("")
  return rendered.length <= limit ? [rendered] : [Mrkdwn.value(Template.plainText(template, event))]
}

// ---------------------------------------------------------------------------
// The message

/** The message for one event. */
export const render = (event: Event.Any, options: Options = {}): Message => {
  // Shrink the per-value budget until the whole payload fits; the first pass almost always does.
  for (const budget of [300, 150, 60, 20]) {
    const message = build(event, options, budget)
    if (byteLength(message) <= limits.payloadBytes) return message
  }
  return build(event, options, 0)
}

const known = (event: Event.Any): boolean => Event.isType(event.event)

/** Where an event breaks the spec: the path in code, the reason as text. */
const mismatchPieces = (mismatch: Sink.Mismatch): ReadonlyArray<Piece> => [
  ...(mismatch.path === "" ? [] : [Mrkdwn.code(Mrkdwn.clip(mismatch.path, 200)), ": "]),
  Mrkdwn.value(Mrkdwn.clip(mismatch.reason, 300))
]

const build = (event: Event.Any, options: Options, budget: number): Message => {
  const isKnown = known(event)
  const mismatch = options.mismatch
  // The generic message: a type the spec does not know, or a payload that breaks it.
  const generic = !isKnown || mismatch !== undefined
  const eventTitle = isKnown ? title(event.event) : `New event type: ${event.event}`
  const emoji = generic ? ":grey_question:" : EMOJI[tone(event.event)]
  const headerText =
    options.override?.header ??
    (options.template?.header !== undefined
      ? Template.plainText(options.template.header, event)
      : `${emoji} ${eventTitle}`)

  const summary: ReadonlyArray<Piece> =
    options.override?.summary ??
    (options.template?.text !== undefined
      ? templated(options.template.text, event, limits.sectionText - 500)
      : !generic
        ? [Mrkdwn.value(eventTitle), ": ", ...subject(event)]
        : mismatch !== undefined
          ? [
              "WorkOS sent ",
              Mrkdwn.code(event.event),
              " with a payload that does not match the spec (",
              ...mismatchPieces(mismatch),
              "). Its fields are below, as sent. ",
              ...subject(event)
            ]
          : [
              "WorkOS sent ",
              Mrkdwn.code(event.event),
              ", a type this relay does not know yet. Its fields are below; update `@workos-relay/core` for a tailored message. ",
              ...subject(event)
            ])
  const mentions = options.mentions ?? []
  const mentionPieces: Array<Piece> = mentions.length > 0 ? [`${mentions.join(" ")} `] : []

  // The last resort (budget 0) keeps only what identifies the event, in less room.
  const summaryLimit = budget > 0 ? limits.sectionText : 1000
  const textLimit = budget > 0 ? limits.text : 500
  const blocks: Array<Block> = [
    header(headerText),
    { type: "section", text: mrkdwn([...mentionPieces, ...summary], summaryLimit) }
  ]
  if (budget > 0) {
    for (const extra of extraSections(event, budget)) blocks.push(section(extra))
    const fields = facts(factSource(event), budget).slice(0, limits.fields)
    if (fields.length > 0) {
      blocks.push({
        type: "section",
        fields: fields.map((fact) =>
          mrkdwn([Mrkdwn.bold(fact.label), "\n", ...fact.value], limits.fieldText)
        )
      })
    }
  }
  const people = who(event)
  if (people.length > 0) blocks.push(context(people))
  const time = dateToken(event.created_at)
  blocks.push(
    context([
      [
        Mrkdwn.code(Mrkdwn.clip(event.id, 100)),
        " · ",
        Mrkdwn.code(Mrkdwn.clip(event.event, 100)),
        ...(time !== undefined ? [" · ", time] : []),
        // Said here too, where a template's summary does not say it.
        ...(mismatch !== undefined ? [" · :warning: does not match the spec"] : [])
      ]
    ])
  )
  if (options.dashboardUrl !== undefined) {
    const url = dashboardLink(event, options.dashboardUrl)
    if (url !== undefined) {
      blocks.push({
        type: "actions",
        elements: [
          {
            type: "button",
            text: { type: "plain_text", text: "Open in WorkOS" },
            url,
            action_id: "workos-relay-open"
          }
        ]
      })
    }
  }
  // The default summary already says what happened; a custom one gets the header in front.
  const custom = options.override?.summary !== undefined || options.template?.text !== undefined
  const lead: Array<Piece> = custom
    ? [Mrkdwn.value(`${Mrkdwn.plain(headerText, limits.headerText)} — `)]
    : []
  const text = Mrkdwn.render([...mentionPieces, ...lead, ...summary], textLimit)
  return { text, blocks: blocks.slice(0, limits.blocks) }
}

// ---------------------------------------------------------------------------
// Digest

const DIGEST_TYPES = 15
const DIGEST_LINES_PER_SECTION = 15
const DIGEST_SECTIONS = 40

/** One message for many events of a channel: counts per type, then one line per event. */
export const digest = (
  events: ReadonlyArray<Event.Any>,
  options: Pick<Options, "mentions"> = {}
): Message => {
  const counts = new Map<string, number>()
  for (const event of events) counts.set(event.event, (counts.get(event.event) ?? 0) + 1)
  const byCount = [...counts].sort((a, b) => b[1] - a[1])
  const mentions = options.mentions ?? []
  const countPieces: Array<Piece> = mentions.length > 0 ? [`${mentions.join(" ")} `] : []
  countPieces.push(`*${events.length} WorkOS events*`)
  for (const [type, n] of byCount.slice(0, DIGEST_TYPES)) {
    countPieces.push(`\n• ${n} × `, Mrkdwn.value(Event.isType(type) ? title(type) : type))
  }
  if (byCount.length > DIGEST_TYPES)
    countPieces.push(`\n• _…and ${byCount.length - DIGEST_TYPES} more types_`)

  const blocks: Array<Block> = [
    header(`:bookmark_tabs: ${events.length} WorkOS events`),
    section(countPieces),
    { type: "divider" }
  ]
  let shown = 0
  for (let s = 0; s < DIGEST_SECTIONS && shown < events.length; s++) {
    const lines: Array<Piece> = []
    for (const event of events.slice(shown, shown + DIGEST_LINES_PER_SECTION)) {
      const time = dateToken(event.created_at)
      lines.push(
        lines.length === 0 ? "" : "\n",
        time ?? "",
        " ",
        Mrkdwn.value(title(event.event)),
        ": ",
        ...subject(event)
      )
    }
    shown += Math.min(DIGEST_LINES_PER_SECTION, events.length - shown)
    blocks.push(section(lines))
  }
  const first = events[0]
  const last = events[events.length - 1]
  const tail: Array<Piece> = []
  if (shown < events.length) tail.push(`_…and ${events.length - shown} more events_ · `)
  if (first !== undefined && last !== undefined)
    tail.push(Mrkdwn.code(first.id), " … ", Mrkdwn.code(last.id))
  if (tail.length > 0) blocks.push(context([tail]))
  const message: Message = {
    text: Mrkdwn.render(countPieces, limits.text),
    blocks: blocks.slice(0, limits.blocks)
  }
  // Many long lines could pass the payload budget: keep dropping event lines until it fits.
  let fitted = message
  while (byteLength(fitted) > limits.payloadBytes && fitted.blocks.length > 3) {
    fitted = { ...fitted, blocks: fitted.blocks.slice(0, -1) }
  }
  return fitted
}
