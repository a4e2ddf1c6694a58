/**
 * A stand-in for Slack's Web API on 127.0.0.1: `chat.postMessage` and
 * `auth.test`, answered as Slack answers them, so the real `@slack/web-api`
 * client is tested as it runs.
 *
 * - Form-urlencoded bodies (what `WebClient` sends, `blocks` as JSON text) and
 *   JSON bodies; the token as `Authorization: Bearer` (or a `token` form field).
 * - Errors as Slack gives them: HTTP 200 with `{ ok: false, error }`
 *   (`not_authed`, `invalid_auth`, `token_revoked`, `channel_not_found`,
 *   `is_archived`, `not_in_channel`, `invalid_blocks`, `msg_too_long`, ...).
 * - Block Kit limit checks (50 blocks, header 150, section text 3000, 10 fields of
 *   2000, context 10 elements, ...): a breach is `invalid_blocks` with Slack's
 *   `[ERROR] ... [json-pointer:/blocks/0/text/text]` messages.
 * - 429 with `Retry-After` from an optional per-channel rate limit, and faults on
 *   demand: a status, a Slack error or a delay for the next calls, or for a while.
 * - Every accepted message recorded, with the mentions and links its markup
 *   makes and any markup Slack would misread, for assertions.
 */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

export interface Channel {
  /** Slack's channel id, `C...`. */
  readonly id: string
  /** The name, without `#`. */
  readonly name: string
  /** Posting to an archived channel is `is_archived`. */
  readonly archived?: boolean
  /** A bot outside a channel gets `not_in_channel` (default: a member). */
  readonly member?: boolean
}

/**
 * One fault, served to one call instead of its normal answer: to calls of
 * `method` (default `chat.postMessage`) and, when `channel` is set (an id or a
 * name), only to messages for that channel.
 */
export type Fault =
  /** Answer with this HTTP status (429 sets `Retry-After` to `retryAfter` seconds, default 1). */
  (
    | { readonly status: number; readonly retryAfter?: number }
    /** Answer HTTP 200 `{ ok: false, error }`. */
    | { readonly error: string }
    /** Wait this many milliseconds, then answer normally. */
    | { readonly delay: number }
  ) & { readonly method?: string; readonly channel?: string }

export interface RecordedMessage {
  /** The channel's id. */
  readonly channel: string
  readonly channelName: string
  readonly ts: string
  readonly text: string | undefined
  readonly blocks: ReadonlyArray<any> | undefined
  /** Every parameter as received (blocks decoded). */
  readonly params: Readonly<Record<string, unknown>>
  /** Mentions the markup makes: `<!here>`, `<@U024BE7LH>`, `<!subteam^S0614TZR7>`, `<!channel>`. */
  readonly mentions: ReadonlyArray<string>
  /** Links the markup makes (`<https://...|label>`, `<#C123>`). */
  readonly links: ReadonlyArray<string>
  /** Markup Slack would misread: a `<` never closed, a `&` that starts no entity. */
  readonly markupProblems: ReadonlyArray<string>
  /** Unix milliseconds. */
  readonly at: number
}

export interface RecordedCall {
  readonly method: string
  readonly contentType: string
  /** `ok`, Slack's error code, or `http <status>`. */
  readonly answer: string
  readonly channel: string | undefined
  readonly at: number
}

export interface Options {
  /** The bot token it accepts (default `xoxb-standin`). */
  readonly token?: string | undefined
  /** Known channels (default `general` and `alerts`); others are `channel_not_found`. */
  readonly channels?: ReadonlyArray<Channel> | undefined
  /** Per-channel rate limit; none by default. Over it: 429 with `Retry-After`. */
  readonly rateLimit?: { readonly perSecond: number; readonly burst: number } | undefined
  /**
   * The largest message (the JSON of text + blocks, in bytes) it accepts; larger is
   * `msg_too_long`. Slack publishes no single figure; default 16 KiB.
   */
  readonly maxMessageBytes?: number | undefined
}

export interface SlackStandIn {
  /** The Web API base URL, `http://127.0.0.1:<port>/api/` (a `WebClient`'s `slackApiUrl`). */
  readonly url: string
  readonly token: string
  /** Messages accepted, in the order accepted. */
  readonly messages: () => ReadonlyArray<RecordedMessage>
  /** Every call, answered or not. */
  readonly calls: () => ReadonlyArray<RecordedCall>
  /** Queues faults, one per call, in order (for `chat.postMessage` unless `method` says). */
  readonly fault: (...faults: ReadonlyArray<Fault>) => void
  /** Serves this fault to every matching call for the next `ms` milliseconds. */
  readonly faultFor: (ms: number, fault: Fault) => void
  /** From now on the token is `token_revoked`. */
  readonly revokeToken: () => void
  readonly addChannel: (channel: Channel) => void
  readonly archive: (channel: string) => void
  /** Forgets messages, calls and faults. */
  readonly clear: () => void
  readonly close: () => Promise<void>
}

export const limits = {
  blocks: 50,
  headerText: 150,
  sectionText: 3000,
  fields: 10,
  fieldText: 2000,
  contextElements: 10,
  contextText: 3000,
  actionsElements: 25,
  buttonText: 75,
  url: 3000,
  blockId: 255,
  actionId: 255,
  /** `text` beyond this is `msg_too_long`. */
  text: 40_000
} as const

export const defaultChannels: ReadonlyArray<Channel> = [
  { id: "C0000GENERAL", name: "general" },
  { id: "C00000ALERTS", name: "alerts" }
]

// ---------------------------------------------------------------------------
// Block Kit checks

type Problems = Array<string>

const problem = (problems: Problems, message: string, pointer: string): void => {
  problems.push(`[ERROR] ${message} [json-pointer:${pointer}]`)
}

const isObject = (v: unknown): v is Record<string, any> =>
  v !== null && typeof v === "object" && !Array.isArray(v)

const checkText = (
  problems: Problems,
  text: unknown,
  pointer: string,
  max: number,
  types: ReadonlyArray<string> = ["plain_text", "mrkdwn"]
): void => {
  if (!isObject(text)) {
    problem(problems, "must be a text object", pointer)
    return
  }
  if (!types.includes(text.type)) {
    problem(problems, `must be one of ${types.join(", ")}`, `${pointer}/type`)
    return
  }
  if (typeof text.text !== "string" || text.text.length === 0) {
    problem(problems, "must be more than 0 characters", `${pointer}/text`)
    return
  }
  if (text.text.length > max)
    problem(problems, `must be less than ${max + 1} characters`, `${pointer}/text`)
  if (text.type === "mrkdwn" && "emoji" in text)
    problem(problems, "emoji is only for plain_text", `${pointer}/emoji`)
  if (text.type === "plain_text" && "verbatim" in text) {
    problem(problems, "verbatim is only for mrkdwn", `${pointer}/verbatim`)
  }
}

/** Slack's checks of a `blocks` array: `[ERROR] ... [json-pointer:...]` for each breach. */
export const checkBlocks = (blocks: unknown): ReadonlyArray<string> => {
  const problems: Problems = []
  if (!Array.isArray(blocks)) {
    problem(problems, "must be an array", "/blocks")
    return problems
  }
  if (blocks.length > limits.blocks)
    problem(problems, `no more than ${limits.blocks} items allowed`, "/blocks")
  const blockIds = new Set<string>()
  blocks.forEach((block, i) => {
    const at = `/blocks/${i}`
    if (!isObject(block)) {
      problem(problems, "must be an object", at)
      return
    }
    if (block.block_id !== undefined) {
      if (typeof block.block_id !== "string" || block.block_id.length > limits.blockId) {
        problem(
          problems,
          `must be a string of at most ${limits.blockId} characters`,
          `${at}/block_id`
        )
      } else if (blockIds.has(block.block_id)) problem(problems, "must be unique", `${at}/block_id`)
      else blockIds.add(block.block_id)
    }
    switch (block.type) {
      case "header":
        checkText(problems, block.text, `${at}/text`, limits.headerText, ["plain_text"])
        break
      case "section": {
        if (block.text === undefined && block.fields === undefined) {
          problem(problems, "must provide either text or fields", at)
        }
        if (block.text !== undefined)
          checkText(problems, block.text, `${at}/text`, limits.sectionText)
        if (block.fields !== undefined) {
          if (!Array.isArray(block.fields) || block.fields.length === 0) {
            problem(problems, "must be a non-empty array", `${at}/fields`)
          } else {
            if (block.fields.length > limits.fields) {
              problem(problems, `no more than ${limits.fields} items allowed`, `${at}/fields`)
            }
            block.fields.forEach((field: unknown, f: number) => {
              checkText(problems, field, `${at}/fields/${f}`, limits.fieldText)
            })
          }
        }
        break
      }
      case "context": {
        if (!Array.isArray(block.elements) || block.elements.length === 0) {
          problem(problems, "must be a non-empty array", `${at}/elements`)
          break
        }
        if (block.elements.length > limits.contextElements) {
          problem(
            problems,
            `no more than ${limits.contextElements} items allowed`,
            `${at}/elements`
          )
        }
        block.elements.forEach((element: any, e: number) => {
          if (isObject(element) && element.type === "image") return
          checkText(problems, element, `${at}/elements/${e}`, limits.contextText)
        })
        break
      }
      case "divider":
        break
      case "actions": {
        if (!Array.isArray(block.elements) || block.elements.length === 0) {
          problem(problems, "must be a non-empty array", `${at}/elements`)
          break
        }
        if (block.elements.length > limits.actionsElements) {
          problem(
            problems,
            `no more than ${limits.actionsElements} items allowed`,
            `${at}/elements`
          )
        }
        block.elements.forEach((element: any, e: number) => {
          const where = `${at}/elements/${e}`
          if (!isObject(element) || element.type !== "button") {
            problem(problems, "only buttons are supported by this stand-in", where)
            return
          }
          checkText(problems, element.text, `${where}/text`, limits.buttonText, ["plain_text"])
          if (
            element.url !== undefined &&
            (typeof element.url !== "string" || element.url.length > limits.url)
          ) {
            problem(problems, `must be a URL of at most ${limits.url} characters`, `${where}/url`)
          }
          if (
            element.action_id !== undefined &&
            String(element.action_id).length > limits.actionId
          ) {
            problem(
              problems,
              `must be less than ${limits.actionId + 1} characters`,
              `${where}/action_id`
            )
          }
        })
        break
      }
      default:
        problem(problems, `unsupported block type ${JSON.stringify(block.type)}`, `${at}/type`)
    }
  })
  return problems
}

// ---------------------------------------------------------------------------
// Markup

/** Every mrkdwn text of a message: the `text` and each mrkdwn text object of its blocks. */
const mrkdwnTexts = (
  text: string | undefined,
  blocks: ReadonlyArray<any> | undefined
): Array<string> => {
  const out: Array<string> = text === undefined ? [] : [text]
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit)
    else if (isObject(v)) {
      if (v.type === "mrkdwn" && typeof v.text === "string") out.push(v.text)
      else Object.values(v).forEach(visit)
    }
  }
  visit(blocks)
  return out
}

const ENTITY = /<([^<>]*)>/g
const MENTION = /^(@[UW][A-Z0-9]+|!here|!channel|!everyone|!subteam\^[A-Z0-9]+)(\|.*)?$/
const LINK = /^((https?|mailto):[^|]*|#C[A-Z0-9]+)(\|.*)?$/

/** What a message's markup does: the mentions and links it makes, and what Slack would misread. */
export const readMarkup = (
  text: string | undefined,
  blocks: ReadonlyArray<any> | undefined
): { mentions: Array<string>; links: Array<string>; problems: Array<string> } => {
  const mentions: Array<string> = []
  const links: Array<string> = []
  const problems: Array<string> = []
  for (const t of mrkdwnTexts(text, blocks)) {
    for (const [whole, inner] of t.matchAll(ENTITY)) {
      if (MENTION.test(inner!)) mentions.push(whole.replace(/\|.*>$/, ">"))
      else if (LINK.test(inner!)) links.push(whole)
    }
    const outside = t.replace(ENTITY, "")
    if (outside.includes("<"))
      problems.push(`a "<" that is never closed in ${JSON.stringify(t.slice(0, 80))}`)
    const ampersands = t.match(/&(?!amp;|lt;|gt;)/g)
    if (ampersands !== null)
      problems.push(`a "&" that starts no entity in ${JSON.stringify(t.slice(0, 80))}`)
  }
  return { mentions, links, problems }
}

// ---------------------------------------------------------------------------
// The server

const readBody = (request: Http.IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    request.on("error", reject)
  })

/** Starts a stand-in; `close` stops it. Prefer `make` in Effect code. */
export const start = async (options: Options = {}): Promise<SlackStandIn> => {
  const token = options.token ?? "xoxb-standin"
  const maxMessageBytes = options.maxMessageBytes ?? 16_384
  const channels = new Map<string, Channel>()
  const addChannel = (channel: Channel): void => {
    channels.set(channel.id, channel)
  }
  for (const channel of options.channels ?? defaultChannels) addChannel(channel)
  const findChannel = (ref: string): Channel | undefined =>
    channels.get(ref) ?? [...channels.values()].find((c) => c.name === ref.replace(/^#/, ""))

  let revoked = false
  let messages: Array<RecordedMessage> = []
  let calls: Array<RecordedCall> = []
  let queue: Array<Fault> = []
  let timed: Array<{ until: number; fault: Fault }> = []
  const buckets = new Map<string, { tokens: number; at: number }>()
  let lastTs = 0
  let counter = 0

  const nextFault = (method: string, channel: Channel | undefined): Fault | undefined => {
    const now = Date.now()
    const matches = (f: Fault): boolean =>
      (f.method ?? "chat.postMessage") === method &&
      (f.channel === undefined ||
        (channel !== undefined && findChannel(f.channel)?.id === channel.id))
    timed = timed.filter((t) => t.until > now)
    const during = timed.find((t) => matches(t.fault))
    if (during !== undefined) return during.fault
    const i = queue.findIndex(matches)
    if (i === -1) return undefined
    return queue.splice(i, 1)[0]
  }

  /** The per-channel limit: undefined to go ahead, or the seconds to wait. */
  const throttle = (channelId: string): number | undefined => {
    const limit = options.rateLimit
    if (limit === undefined) return undefined
    const now = Date.now()
    const bucket = buckets.get(channelId) ?? { tokens: limit.burst, at: now }
    bucket.tokens = Math.min(
      limit.burst,
      bucket.tokens + ((now - bucket.at) * limit.perSecond) / 1000
    )
    bucket.at = now
    buckets.set(channelId, bucket)
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return undefined
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / limit.perSecond))
  }

  const nextTs = (): string => {
    const seconds = Math.floor(Date.now() / 1000)
    if (seconds !== lastTs) {
      lastTs = seconds
      counter = 0
    }
    counter++
    return `${seconds}.${String(counter).padStart(6, "0")}`
  }

  const handle = async (
    request: Http.IncomingMessage,
    response: Http.ServerResponse
  ): Promise<void> => {
    const url = new URL(request.url ?? "/", "http://127.0.0.1")
    const method = url.pathname.replace(/^\/api\//, "")
    const contentType = String(request.headers["content-type"] ?? "")
    const body = await readBody(request)
    const at = Date.now()
    const reply = (
      status: number,
      payload: unknown,
      headers: Record<string, string> = {}
    ): void => {
      response.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers })
      response.end(JSON.stringify(payload))
    }
    const record = (answer: string, channel?: string): void => {
      calls.push({ method, contentType, answer, channel, at })
    }
    const fail = (error: string, extra: Record<string, unknown> = {}, channel?: string): void => {
      record(error, channel)
      reply(200, { ok: false, error, ...extra })
    }

    // Parameters: a form (blocks as JSON text) or a JSON body.
    let params: Record<string, unknown>
    if (contentType.startsWith("application/json")) {
      try {
        params = JSON.parse(body || "{}")
      } catch {
        return fail("invalid_json")
      }
    } else {
      // Slack also reads arguments from the query string; the body wins.
      params = {
        ...Object.fromEntries(new URLSearchParams(url.search)),
        ...Object.fromEntries(new URLSearchParams(body))
      }
    }
    if (method !== "chat.postMessage" && method !== "auth.test") return fail("unknown_method")

    const ref = typeof params.channel === "string" ? params.channel : ""
    const channel = ref === "" ? undefined : findChannel(ref)
    const fault = nextFault(method, channel)
    if (fault !== undefined) {
      if ("delay" in fault) await new Promise((resolve) => setTimeout(resolve, fault.delay))
      else if ("status" in fault) {
        record(`http ${fault.status}`, channel?.id ?? (ref || undefined))
        if (fault.status === 429) {
          return reply(
            429,
            { ok: false, error: "ratelimited" },
            { "retry-after": String(fault.retryAfter ?? 1) }
          )
        }
        response.writeHead(fault.status, { "content-type": "text/html" })
        return void response.end(`<html><body>${fault.status}</body></html>`)
      } else return fail(fault.error, {}, channel?.id)
    }

    // Auth: a bearer token, or (form bodies only) a `token` field.
    const bearer = /^Bearer (.+)$/.exec(String(request.headers.authorization ?? ""))?.[1]
    const given = bearer ?? (contentType.startsWith("application/json") ? undefined : params.token)
    if (given === undefined || given === "") return fail("not_authed")
    if (given !== token) return fail("invalid_auth")
    if (revoked) return fail("token_revoked")

    if (method === "auth.test") {
      record("ok")
      return reply(200, {
        ok: true,
        url: "https://standin.slack.com/",
        team: "Stand-in",
        user: "workos-relay",
        team_id: "T0STANDIN",
        user_id: "U0STANDIN",
        bot_id: "B0STANDIN",
        is_enterprise_install: false
      })
    }

    // chat.postMessage
    if (channel === undefined) return fail("channel_not_found", {}, ref || undefined)
    if (channel.archived === true) return fail("is_archived", {}, channel.id)
    if (channel.member === false) return fail("not_in_channel", {}, channel.id)

    let blocks: ReadonlyArray<any> | undefined
    if (params.blocks !== undefined) {
      try {
        blocks =
          typeof params.blocks === "string" ? JSON.parse(params.blocks) : (params.blocks as any)
      } catch {
        return fail("invalid_blocks_format", {}, channel.id)
      }
      const problems = checkBlocks(blocks)
      if (problems.length > 0) {
        return fail(
          "invalid_blocks",
          { errors: problems, response_metadata: { messages: problems } },
          channel.id
        )
      }
    }
    const text = typeof params.text === "string" ? params.text : undefined
    if ((text === undefined || text === "") && (blocks === undefined || blocks.length === 0)) {
      return fail("no_text", {}, channel.id)
    }
    if (text !== undefined && text.length > limits.text) return fail("msg_too_long", {}, channel.id)
    if (Buffer.byteLength(JSON.stringify({ text, blocks }), "utf8") > maxMessageBytes) {
      return fail("msg_too_long", {}, channel.id)
    }

    const wait = throttle(channel.id)
    if (wait !== undefined) {
      record("http 429", channel.id)
      return reply(429, { ok: false, error: "ratelimited" }, { "retry-after": String(wait) })
    }

    const ts = nextTs()
    const markup = readMarkup(text, blocks)
    messages.push({
      channel: channel.id,
      channelName: channel.name,
      ts,
      text,
      blocks,
      params: { ...params, ...(blocks !== undefined ? { blocks } : {}) },
      mentions: markup.mentions,
      links: markup.links,
      markupProblems: markup.problems,
      at
    })
    record("ok", channel.id)
    reply(200, {
      ok: true,
      channel: channel.id,
      ts,
      message: {
        type: "message",
        text,
        user: "U0STANDIN",
        bot_id: "B0STANDIN",
        ts,
        ...(blocks ? { blocks } : {})
      }
    })
  }

  const server = Http.createServer((request, response) => {
    handle(request, response).catch((error) => {
      response.writeHead(500, { "content-type": "text/plain" })
      response.end(String(error))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  const port = (server.address() as AddressInfo).port

  return {
    url: `http://127.0.0.1:${port}/api/`,
    token,
    messages: () => messages,
    calls: () => calls,
    fault: (...faults) => {
      queue.push(...faults)
    },
    faultFor: (ms, fault) => {
      timed.push({ until: Date.now() + ms, fault })
    },
    revokeToken: () => {
      revoked = true
    },
    addChannel,
    archive: (ref) => {
      const channel = findChannel(ref)
      if (channel !== undefined) channels.set(channel.id, { ...channel, archived: true })
    },
    clear: () => {
      messages = []
      calls = []
      queue = []
      timed = []
      buckets.clear()
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

/** A stand-in for the life of the scope. */
export const make = (options: Options = {}): Effect.Effect<SlackStandIn, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (standIn) => Effect.promise(() => standIn.close())
  )
