/**
 * The `eventbridge` sink: encodes a batch into entries, packs them into PutEvents
 * requests of at most 10 entries and 1 MiB, sends the requests one after another and
 * says, per event, what became of it.
 *
 * - An entry AWS failed with `InternalFailure` or `ThrottlingException` -> retry.
 * - An entry AWS refused for good (`MalformedDetail`, `InvalidArgument`,
 *   `AccessDeniedException`, `NotAuthorizedFor*`, ...) -> rejected with AWS's message.
 * - An event that cannot fit a request on its own -> rejected with the reason.
 * - The whole first request throttled, 5xx, timed out -> `SinkUnavailable`; a later
 *   request of the batch -> what was sent is delivered, the rest retried.
 * - Credentials or permissions refused, no such bus -> `SinkFatal`.
 *
 * Requests go out in order, and after a request whose entries must be retried the
 * rest of the batch waits for the pipeline's retry, so a retried event overtakes at
 * most the other entries of its own request.
 *
 * The sink is raw (`Sink.Definition.raw`): an event whose payload breaks the spec is
 * put on the bus as WorkOS sent it, like any other. Its mismatch goes nowhere in the
 * entry: the detail is what WorkOS sent, the detail-type is what rules match on, and
 * resources are ARNs; no field of an entry is meant for it.
 */
import { type Event, Sink } from "@workos-relay/core"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Client from "./Client.ts"
import { Config } from "./Config.ts"
import * as Entries from "./Entries.ts"

/** Entry error codes worth sending again: AWS's side failed, not the entry. */
const retryableEntryCodes = new Set(["InternalFailure", "ThrottlingException", "MissingResult"])

/**
 * The default batching: 100 events are 10 full requests of small events (WorkOS
 * events are a few KB), sent back to back within one `deliver`; 4 MiB of event JSON
 * bounds a batch of large events to about 4 requests; 1 second bounds the delay a
 * quiet stream adds.
 */
export const defaultBatch: Sink.BatchSettings = {
  maxEvents: 100,
  maxBytes: 4 * 1_048_576,
  maxWait: "1 second"
}

const notSentYet = "not sent yet: an earlier event of this batch is being retried first"

interface Pending {
  readonly index: number
  readonly entry: Entries.Entry
  readonly size: number
}

const entryOutcome = (result: Client.EntryResult): Sink.Outcome => {
  if (result._tag === "Accepted") return Sink.delivered
  const reason = `EventBridge ${result.code}: ${result.message}`
  return retryableEntryCodes.has(result.code) ? Sink.retry(reason) : Sink.rejected(reason)
}

/** Makes a sink over a client; `name` is the sink's name in the config file, for messages. */
export const make = (config: Config, client: Client.Shape, name: string): Sink.Sink => {
  const encode = Entries.encoder(config)
  const where = `eventbridge sink "${name}" (bus ${config.eventBus}, ${client.region})`

  const deliver = (batch: ReadonlyArray<Event.Any>) =>
    Effect.gen(function* () {
      const outcomes: Array<Sink.Outcome | undefined> = new Array(batch.length).fill(undefined)
      const pending: Array<Pending> = []
      batch.forEach((event, index) => {
        const encoded = encode(event)
        if (Result.isFailure(encoded)) outcomes[index] = Sink.rejected(encoded.failure)
        else pending.push({ index, ...encoded.success })
      })

      let sentAny = false
      const retryAll = (entries: ReadonlyArray<Pending>, reason: string) => {
        for (const p of entries) outcomes[p.index] = Sink.retry(reason)
      }

      /**
       * Sends one request and records its entries' outcomes. True when what follows
       * must wait for the pipeline's retry (an entry to retry, AWS unavailable).
       */
      const send = (
        request: ReadonlyArray<Pending>
      ): Effect.Effect<boolean, Sink.SinkFatal | Sink.SinkUnavailable> =>
        Effect.gen(function* () {
          const sent = yield* Effect.result(client.putEvents(request.map((p) => p.entry)))
          if (Result.isSuccess(sent)) {
            sentAny = true
            let mustRetry = false
            request.forEach((p, i) => {
              const outcome = entryOutcome(sent.success[i]!)
              if (outcome._tag === "Retry") mustRetry = true
              outcomes[p.index] = outcome
            })
            return mustRetry
          }
          const error = sent.failure
          switch (error.kind) {
            case "Unauthorized":
              return yield* Effect.fail(
                new Sink.SinkFatal({ reason: `${where}: ${error.message}` })
              )
            case "Invalid": {
              if (request.length === 1) {
                outcomes[request[0]!.index] = Sink.rejected(`EventBridge ${error.message}`)
                return false
              }
              // AWS refused the request as a whole: send its entries one by one to find the culprit.
              for (let i = 0; i < request.length; i++) {
                if (yield* send([request[i]!])) {
                  retryAll(request.slice(i + 1), notSentYet)
                  return true
                }
              }
              return false
            }
            default:
              // Throttled or unavailable: with nothing sent yet, the whole batch waits.
              if (!sentAny) {
                return yield* Effect.fail(
                  new Sink.SinkUnavailable({ reason: `${where}: ${error.message}` })
                )
              }
              retryAll(request, `EventBridge ${error.message}`)
              return true
          }
        })

      const requests = Entries.pack(pending)
      for (let r = 0; r < requests.length; r++) {
        if (yield* send(requests[r]!)) {
          retryAll(requests.slice(r + 1).flat(), notSentYet)
          break
        }
      }
      return outcomes as Array<Sink.Outcome>
    })

  /**
   * A PutEvents with no entries: AWS checks the request's signature (so the
   * credentials), then refuses the empty list, and nothing reaches the bus. Whether
   * the credentials may put events on this bus shows at the first delivery.
   */
  const check = client.putEvents([]).pipe(
    Effect.asVoid,
    Effect.catchIf(
      (error) => error.code === "ValidationException",
      () => Effect.void
    ),
    Effect.mapError((error) =>
      error.kind === "Throttled" || error.kind === "Unavailable"
        ? new Sink.SinkUnavailable({ reason: `${where}: ${error.message}` })
        : new Sink.SinkFatal({ reason: `${where}: ${error.message}` })
    )
  )

  return { batch: defaultBatch, deliver, check }
}

/** The `eventbridge` sink type. */
export const definition = Sink.define({
  type: "eventbridge",
  // It forwards events as WorkOS sent them: one that breaks the spec goes too.
  raw: true,
  config: Config,
  make: (config, context) =>
    Client.make(config).pipe(
      Effect.mapError(
        (error) =>
          new Sink.SinkFatal({ reason: `eventbridge sink "${context.name}": ${error.message}` })
      ),
      Effect.map((client) => make(config, client, context.name))
    )
})
