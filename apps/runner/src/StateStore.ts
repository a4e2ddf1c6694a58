/**
 * Where the runner keeps what must survive it: a checkpoint per sink, dead letters,
 * and the lease that lets only one runner consume at a time.
 *
 * SQLite (`node:sqlite`, the default: zero setup, one machine) or Postgres
 * (`@effect/sql-pg`, when runners on several machines share the work). Both run one
 * implementation (`state/Sql.ts`: migrations, statements, the fenced lease). Every
 * error names the store (its file, or the server without credentials) and the
 * operation; a lock, a full disk or a server away is retried as `state/Patience.ts`
 * says, without blocking the runner's event loop.
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type { Service, StoreError } from "./state/Model.ts"
import * as Patience from "./state/Patience.ts"
import { postgres } from "./state/Postgres.ts"
import { sqlite } from "./state/Sqlite.ts"

export type {
  Checkpoint,
  DeadLetter,
  Lease,
  NewDeadLetter,
  Problem,
  RecordedGap,
  Service,
  WebhookDelivery,
  WebhookSummary
} from "./state/Model.ts"
export { defaultSource, LeaseLost, StoreError } from "./state/Model.ts"
export { postgres } from "./state/Postgres.ts"
export { migrations } from "./state/Sql.ts"
export { sqlite } from "./state/Sqlite.ts"
export { Patience }

export class StateStore extends Context.Service<StateStore, Service>()(
  "@workos-relay/runner/StateStore"
) {}

/**
 * The store a config's `state` names. `for: "run"`: a lock is waited out however long
 * it lasts, and a checkpoint, a dead letter or the lease is retried until saved
 * (delivery pauses meanwhile); a full disk or a read-only folder at start ends the run.
 * `for: "command"` (the default): a lock is waited out for up to 10 s, faults end the command.
 */
export const layer = (
  state:
    | { readonly type: "sqlite"; readonly path: string }
    | { readonly type: "postgres"; readonly url: Redacted.Redacted<string> },
  options: { readonly for?: "run" | "command" } = {}
): Layer.Layer<StateStore, StoreError> => {
  const patience =
    options.for === "run"
      ? { open: Patience.openForRun, retry: Patience.untilDone }
      : { open: Patience.command, retry: Patience.command }
  return Layer.effect(
    StateStore,
    state.type === "sqlite" ? sqlite(state.path, patience) : postgres(state.url, patience)
  )
}
