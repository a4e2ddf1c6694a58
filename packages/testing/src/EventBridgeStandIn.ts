/**
 * An Amazon EventBridge stand-in on 127.0.0.1: enough of `PutEvents` over AWS JSON 1.1
 * for a real AWS SDK client to talk to it, with AWS's limits and entry rules, and
 * faults a test can switch on (per-entry failures, throttling, 500s, slow answers).
 *
 * ```ts
 * const eventBridge = yield* EventBridgeStandIn.make() // or `await EventBridgeStandIn.start()`
 * const client = new EventBridgeClient({ endpoint: eventBridge.url, region: "us-east-1", credentials })
 * eventBridge.setFaults({ internalFailureRatio: 0.3 })
 * ```
 */
import { randomUUID } from "node:crypto"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/** AWS's limits for one PutEvents request. */
export const maxEntries = 10
export const maxRequestBytes = 1_048_576
export const maxDetailTypeLength = 128

/** An entry as it arrives on the wire (AWS JSON 1.1). */
export interface WireEntry {
  readonly Source?: unknown
  readonly DetailType?: unknown
  readonly Detail?: unknown
  readonly EventBusName?: unknown
  readonly Resources?: unknown
  readonly Time?: unknown
  readonly TraceHeader?: unknown
}

/** An event EventBridge accepted, in the order it accepted them. */
export interface StoredEvent {
  readonly eventId: string
  readonly source: string
  readonly detailType: string
  /** The Detail string exactly as sent. */
  readonly detail: string
  readonly eventBusName: string
  readonly resources: ReadonlyArray<string>
  /** Time as sent (epoch seconds), when sent. */
  readonly time: number | undefined
}

/** A per-entry failure, as AWS reports it in `Entries[i]`. */
export interface EntryError {
  readonly code: string
  readonly message: string
}

/** A whole-request failure, as AWS sends it. */
export interface RequestError {
  readonly status: number
  readonly code: string
  readonly message: string
}

/** Faults to inject; every one is off unless set. */
export interface Faults {
  /** The share (0..1) of otherwise valid entries failed at random with `InternalFailure`. */
  readonly internalFailureRatio?: number
  /** Fails the entries it returns an error for (`MalformedDetail`, `AccessDeniedException`, ...). */
  readonly failEntry?: (entry: WireEntry) => EntryError | undefined
  /** Answers this many of the next requests with 400 `ThrottlingException` (Infinity: all). */
  readonly throttleRequests?: number
  /** Answers this many of the next requests with 500 `InternalException` (Infinity: all). */
  readonly failRequests?: number
  /** Answers every request with this error (credentials refused, bus missing, ...). */
  readonly rejectRequests?: RequestError
  /** Refuses the well-formed requests it returns an error for, as a whole (after the checks above). */
  readonly rejectRequest?: (entries: ReadonlyArray<WireEntry>) => RequestError | undefined
  /** Lets this many requests through before the whole-request faults above begin. */
  readonly afterRequests?: number
  /** Waits this many milliseconds before answering each request. */
  readonly delayMillis?: number
}

export interface StandIn {
  /** `http://127.0.0.1:<port>`: give it to the SDK client as `endpoint`. */
  readonly url: string
  /** Accepted events, in order. */
  readonly events: ReadonlyArray<StoredEvent>
  /** How many PutEvents requests reached the stand-in (answered in any way). */
  readonly requestCount: () => number
  /** The number of entries of every well-formed request, in order. */
  readonly entriesPerRequest: ReadonlyArray<number>
  /** The access key id each well-signed request was signed with, in order. */
  readonly accessKeyIds: ReadonlyArray<string>
  /** Replaces the faults in force. */
  readonly setFaults: (faults: Faults) => void
  /** Forgets stored events, counts and faults. */
  readonly reset: () => void
  readonly close: () => Promise<void>
}

export interface Options {
  /** Seed for the random per-entry failures, so a test run can be repeated. */
  readonly seed?: number
}

const utf8Length = (value: string): number => Buffer.byteLength(value, "utf8")

/** AWS's size of an entry: 14 bytes for Time plus the UTF-8 bytes of Source, DetailType, Detail and each resource. */
export const entrySize = (entry: WireEntry): number => {
  let size = entry.Time === undefined ? 0 : 14
  if (typeof entry.Source === "string") size += utf8Length(entry.Source)
  if (typeof entry.DetailType === "string") size += utf8Length(entry.DetailType)
  if (typeof entry.Detail === "string") size += utf8Length(entry.Detail)
  if (Array.isArray(entry.Resources)) {
    for (const resource of entry.Resources)
      if (typeof resource === "string") size += utf8Length(resource)
  }
  return size
}

// A SigV4 Authorization header for the events service:
// AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/events/aws4_request, SignedHeaders=host;x-amz-date, Signature=<64 hex>
const sigV4 =
  /^AWS4-HMAC-SHA256 Credential=([A-Za-z0-9]+)\/\d{8}\/[a-z0-9-]+\/events\/aws4_request, ?SignedHeaders=([a-z0-9-]+(?:;[a-z0-9-]+)*), ?Signature=[0-9a-f]{64}$/
const amzDate = /^\d{8}T\d{6}Z$/

const checkSignature = (request: Http.IncomingMessage): RequestError | undefined => {
  const authorization = request.headers.authorization
  if (authorization === undefined) {
    return {
      status: 400,
      code: "MissingAuthenticationTokenException",
      message: "Missing Authentication Token"
    }
  }
  const match = sigV4.exec(authorization)
  const signed = match?.[2]?.split(";") ?? []
  const date = request.headers["x-amz-date"]
  if (match === null || !signed.includes("host") || !signed.includes("x-amz-date")) {
    return {
      status: 400,
      code: "IncompleteSignatureException",
      message: `Authorization header is not a well-formed SigV4 signature: ${authorization}`
    }
  }
  if (typeof date !== "string" || !amzDate.test(date)) {
    return {
      status: 400,
      code: "IncompleteSignatureException",
      message: "X-Amz-Date header is missing or malformed"
    }
  }
  return undefined
}

const isJsonObject = (text: string): boolean => {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === "object" && value !== null && !Array.isArray(value)
  } catch {
    return false
  }
}

/** The entry rules AWS applies to each entry; the first broken one is the entry's error. */
const checkEntry = (entry: WireEntry): EntryError | undefined => {
  for (const field of ["Source", "DetailType", "Detail"] as const) {
    if (typeof entry[field] !== "string" || entry[field] === "") {
      return {
        code: "InvalidArgument",
        message: `Parameter ${field} is not valid. Reason: ${field} is a required argument.`
      }
    }
  }
  const detailType = entry.DetailType as string
  if (detailType.length > maxDetailTypeLength) {
    return {
      code: "InvalidArgument",
      message: `Parameter DetailType is not valid. Reason: DetailType is longer than ${maxDetailTypeLength} characters.`
    }
  }
  if (!isJsonObject(entry.Detail as string))
    return { code: "MalformedDetail", message: "Detail is malformed." }
  if ((entry.Source as string).startsWith("aws.")) {
    return { code: "NotAuthorizedForSourceException", message: "Not authorized for the source." }
  }
  if (entry.Resources !== undefined) {
    if (!Array.isArray(entry.Resources) || entry.Resources.some((r) => typeof r !== "string")) {
      return {
        code: "InvalidArgument",
        message: "Parameter Resources is not valid. Reason: Resources must be strings."
      }
    }
  }
  if (entry.Time !== undefined && typeof entry.Time !== "number") {
    return {
      code: "InvalidArgument",
      message: "Parameter Time is not valid. Reason: Time must be epoch seconds."
    }
  }
  return undefined
}

/** A small seeded generator (mulberry32), so random faults repeat with the same seed. */
const seededRandom = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const readBody = (request: Http.IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    request.on("error", reject)
  })

const contentType = "application/x-amz-json-1.1"

const send = (
  response: Http.ServerResponse,
  status: number,
  body: unknown,
  errorType?: string
): void => {
  const text = JSON.stringify(body)
  const headers: Http.OutgoingHttpHeaders = {
    "content-type": contentType,
    "content-length": Buffer.byteLength(text),
    "x-amzn-requestid": randomUUID()
  }
  if (errorType !== undefined) headers["x-amzn-errortype"] = errorType
  response.writeHead(status, headers)
  response.end(text)
}

const sendError = (response: Http.ServerResponse, error: RequestError): void =>
  send(response, error.status, { __type: error.code, message: error.message }, error.code)

/** Starts the stand-in on 127.0.0.1 (a free port); `close` stops it. */
export const start = async (options: Options = {}): Promise<StandIn> => {
  const events: Array<StoredEvent> = []
  const entriesPerRequest: Array<number> = []
  const accessKeyIds: Array<string> = []
  let requests = 0
  let faults: Faults = {}
  let throttleLeft = 0
  let failLeft = 0
  let passLeft = 0
  const random = seededRandom(options.seed ?? 1)

  const setFaults = (next: Faults): void => {
    faults = next
    throttleLeft = next.throttleRequests ?? 0
    failLeft = next.failRequests ?? 0
    passLeft = next.afterRequests ?? 0
  }

  const handle = async (request: Http.IncomingMessage, response: Http.ServerResponse) => {
    const body = await readBody(request)
    requests++
    if (faults.delayMillis !== undefined && faults.delayMillis > 0) {
      await new Promise((resolve) => setTimeout(resolve, faults.delayMillis))
    }
    if (request.method !== "POST" || (request.url ?? "/") !== "/") {
      return sendError(response, {
        status: 404,
        code: "UnknownOperationException",
        message: `${request.method} ${request.url}`
      })
    }
    const target = request.headers["x-amz-target"]
    if (target !== "AWSEvents.PutEvents") {
      return sendError(response, {
        status: 400,
        code: "UnknownOperationException",
        message: `Only AWSEvents.PutEvents is served here, got X-Amz-Target ${String(target)}`
      })
    }
    if (request.headers["content-type"] !== contentType) {
      return sendError(response, {
        status: 400,
        code: "SerializationException",
        message: `Content-Type must be ${contentType}, got ${String(request.headers["content-type"])}`
      })
    }
    const signatureError = checkSignature(request)
    if (signatureError !== undefined) return sendError(response, signatureError)
    accessKeyIds.push(sigV4.exec(request.headers.authorization!)![1]!)
    if (passLeft > 0) passLeft--
    else if (faults.rejectRequests !== undefined) return sendError(response, faults.rejectRequests)
    else if (throttleLeft > 0) {
      throttleLeft--
      return sendError(response, {
        status: 400,
        code: "ThrottlingException",
        message: "Rate exceeded"
      })
    } else if (failLeft > 0) {
      failLeft--
      return sendError(response, {
        status: 500,
        code: "InternalException",
        message: "An internal error occurred."
      })
    }

    let parsed: unknown
    try {
      parsed = JSON.parse(body)
    } catch {
      return sendError(response, {
        status: 400,
        code: "SerializationException",
        message: "Request body is not valid JSON"
      })
    }
    const entries = (parsed as { Entries?: unknown } | null)?.Entries
    if (!Array.isArray(entries) || entries.length < 1 || entries.length > maxEntries) {
      return sendError(response, {
        status: 400,
        code: "ValidationException",
        message: `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and ${maxEntries}, got ${Array.isArray(entries) ? entries.length : "none"}`
      })
    }
    const total = (entries as Array<WireEntry>).reduce((sum, entry) => sum + entrySize(entry), 0)
    if (total > maxRequestBytes) {
      return sendError(response, {
        status: 400,
        code: "ValidationException",
        message: `Total size of the entries in the request is over the limit: ${total} > ${maxRequestBytes} bytes.`
      })
    }
    const refused = faults.rejectRequest?.(entries as Array<WireEntry>)
    if (refused !== undefined) return sendError(response, refused)
    entriesPerRequest.push(entries.length)

    let failed = 0
    const results = (entries as Array<WireEntry>).map((entry) => {
      const error =
        checkEntry(entry) ??
        faults.failEntry?.(entry) ??
        (faults.internalFailureRatio !== undefined && random() < faults.internalFailureRatio
          ? { code: "InternalFailure", message: "Internal service error." }
          : undefined)
      if (error !== undefined) {
        failed++
        return { ErrorCode: error.code, ErrorMessage: error.message }
      }
      const eventId = randomUUID()
      events.push({
        eventId,
        source: entry.Source as string,
        detailType: entry.DetailType as string,
        detail: entry.Detail as string,
        eventBusName: typeof entry.EventBusName === "string" ? entry.EventBusName : "default",
        resources: (entry.Resources as Array<string> | undefined) ?? [],
        time: entry.Time as number | undefined
      })
      return { EventId: eventId }
    })
    send(response, 200, { FailedEntryCount: failed, Entries: results })
  }

  const server = Http.createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) {
        sendError(response, { status: 500, code: "InternalException", message: String(error) })
      }
    })
  })

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    events,
    entriesPerRequest,
    accessKeyIds,
    requestCount: () => requests,
    setFaults,
    reset: () => {
      events.length = 0
      entriesPerRequest.length = 0
      accessKeyIds.length = 0
      requests = 0
      setFaults({})
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

/** A stand-in for the length of a scope. */
export const make = (options: Options = {}): Effect.Effect<StandIn, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (standIn) => Effect.promise(() => standIn.close())
  )
