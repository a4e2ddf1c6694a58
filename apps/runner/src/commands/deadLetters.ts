/** `workos-relay dead-letters list|retry|drop`. */
import { Command, Flag } from "effect/cli"
import { configFlag, lazy } from "./shared.ts"

const idsFlag = Flag.String("id").pipe(
  Flag.optional,
  Flag.withDescription("Dead letter id(s), comma-separated")
)
const sinkFlag = Flag.String("sink").pipe(
  Flag.optional,
  Flag.withDescription("Only this sink's dead letters")
)

const deadLettersList = Command.make(
  "list",
  {
    config: configFlag,
    sink: sinkFlag,
    limit: Flag.Int("limit").pipe(Flag.withDefault(50), Flag.withDescription("At most this many"))
  },
  lazy(
    () => import("./handlers/deadLetters.ts"),
    (m) => m.list
  )
).pipe(Command.withDescription("List dead letters"))

const deadLettersRetry = Command.make(
  "retry",
  { config: configFlag, sink: sinkFlag, id: idsFlag },
  lazy(
    () => import("./handlers/deadLetters.ts"),
    (m) => m.retry
  )
).pipe(Command.withDescription("Deliver dead letters again; those delivered are removed"))

const deadLettersDrop = Command.make(
  "drop",
  {
    config: configFlag,
    sink: sinkFlag,
    id: idsFlag,
    all: Flag.Boolean("all").pipe(
      Flag.withDefault(false),
      Flag.withDescription("Drop every dead letter (of --sink when given)")
    )
  },
  lazy(
    () => import("./handlers/deadLetters.ts"),
    (m) => m.drop
  )
).pipe(Command.withDescription("Delete dead letters"))

export const deadLetters = Command.make("dead-letters").pipe(
  Command.withDescription("List, retry or drop dead letters"),
  Command.withSubcommands([deadLettersList, deadLettersRetry, deadLettersDrop])
)
