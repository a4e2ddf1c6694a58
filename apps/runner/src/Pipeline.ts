/**
 * The pipeline: events from the source to every sink, one lane per sink. Each lane
 * has its own buffer, its own checkpoint and its own retries, so a slow or failing
 * sink never holds back the others.
 *
 * - `pipeline/Reader.ts`: reading WorkOS, shared by the lanes that keep up;
 * - `pipeline/Lane.ts`: one sink's filter, batches and checkpoint;
 * - `pipeline/Delivery.ts`: one batch delivered, with retries and dead letters;
 * - `pipeline/Supervisor.ts`: the wiring, stop and the shutdown deadline.
 */
export {
  type Delivery,
  deliver,
  type FailureStreak,
  failureStreak,
  type RetryPolicy,
  sinkError
} from "./pipeline/Delivery.ts"
export { type Accepts, makeFilter, organizationOf } from "./pipeline/Filter.ts"
export {
  keyOf,
  Lane,
  type LaneContext,
  type LaneKey,
  type LaneReport,
  type LaneSpec
} from "./pipeline/Lane.ts"
export type { Element, Source } from "./pipeline/Reader.ts"
export { explainRejection, rejectionOf, SourceRejected } from "./pipeline/Rejection.ts"
export { type Options, run } from "./pipeline/Supervisor.ts"
