/**
 * WorkOS refusing to give events in a way that asking again cannot fix: the run
 * stops rather than ask for ever.
 */
import * as Http from "node:http"
import { EventStream, WorkOS } from "@workos-relay/core"
import * as Data from "effect/Data"

/**
 * WorkOS refused to give events in a way that asking again cannot fix (400, 401, 403,
 * 404, 422: a wrong key, a key without access, a bad query). The run stops rather
 * than ask for ever; what was delivered is committed first.
 */
export class SourceRejected extends Data.TaggedError("SourceRejected")<{
  /** WorkOS's answer, or the possible gap the stream stopped at (`source.onGap: stop`). */
  readonly error: WorkOS.WorkOSApiError | EventStream.GapError
}> {
  override get message(): string {
    return this.error instanceof WorkOS.WorkOSApiError
      ? explainRejection(this.error)
      : `${this.error.message}; stopped as source.onGap says (set it to continue to go on from the oldest event WorkOS keeps)`
  }
}

/** What WorkOS answered, and which setting of the config file to look at. */
export const explainRejection = (error: WorkOS.WorkOSApiError): string => {
  const name = Http.STATUS_CODES[error.status]
  const fields =
    error.errors.length === 0
      ? ""
      : `; ${error.errors.map((e) => `${e.field}: ${e.code}`).join(", ")}`
  const requestId = error.requestId === undefined ? "" : `; request id ${error.requestId}`
  const answer = `${error.status}${name === undefined ? "" : ` ${name}`}: ${error.detail}${error.code === undefined ? "" : ` (${error.code})`}${fields}${requestId}`
  switch (error.status) {
    case 401:
      return `WorkOS rejected the API key (${answer}): check source.apiKey / WORKOS_API_KEY (missing, wrong, revoked, or from another environment)`
    case 403:
      return `WorkOS refused the API key access to events (${answer}): check what the key may read in the WorkOS dashboard, or set another key in source.apiKey`
    case 404:
      return `WorkOS has no ${error.request} here (${answer}): check source.baseUrl (default https://api.workos.com)`
    case 400:
    case 422:
      return `WorkOS rejected the query of ${error.request} (${answer}): check source.events, source.organization, source.start and the sinks' events`
    default:
      return `WorkOS refused ${error.request} (${answer}); asking again cannot fix this`
  }
}

/** The rejection in a failure of the source, when it is one that retrying cannot fix. */
export const rejectionOf = (failure: unknown): SourceRejected | undefined =>
  failure instanceof SourceRejected
    ? failure
    : failure instanceof WorkOS.WorkOSApiError || failure instanceof EventStream.GapError
      ? new SourceRejected({ error: failure })
      : undefined
