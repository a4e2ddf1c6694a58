/**
 * WorkOS events: every type in WorkOS's spec, exactly typed, plus `UnknownEvent`
 * for type names the spec does not know yet.
 *
 * A decoded event is the very object WorkOS sent: decoding checks it and never
 * rebuilds it, so fields the spec does not know survive and re-encoding gives back
 * the same JSON. Known types are checked by a generated lean check (the hot path);
 * only an event that fails it goes through its Effect Schema, to say where and why.
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"
import * as SchemaIssue from "effect/SchemaIssue"
import { type EventType, type KnownEvent, schemas } from "./generated/Catalogue.ts"
import { checks } from "./generated/Checks.ts"
import { isObject } from "./internal/Check.ts"
import { DateTimeString, isDateTime } from "./internal/DateTime.ts"
import { closest } from "./Text.ts"

export {
  /** Every event type name the spec knows, sorted. */
  eventTypes,
  /** The union of every known event type's Effect Schema. */
  KnownEvent as Schema,
  /** The Effect Schema of every known event type, by name. */
  schemas
} from "./generated/Catalogue.ts"

/** An event type name the spec knows. */
export type Type = EventType

/** Every event the spec knows, discriminated by `event`. */
export type Event = KnownEvent

/** The event of one type: `Event.Of<"dsync.user.created">`. */
export type Of<T extends Type> = Extract<Event, { readonly event: T }>

/** An event whose type the spec does not know yet: its envelope is checked, its payload kept as is. */
export const UnknownEvent = Schema.Struct({
  object: Schema.Literal("event"),
  id: Schema.String,
  event: Schema.String,
  data: Schema.Record(Schema.String, Schema.Unknown),
  created_at: DateTimeString,
  context: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown))
}).annotate({ identifier: "UnknownEvent" })
export interface UnknownEvent extends Schema.Schema.Type<typeof UnknownEvent> {}

/** Any event WorkOS may send: a known one or one of a type the spec does not know yet. */
export type Any = Event | UnknownEvent

/** A known type whose payload breaks its schema, or something that is not an event at all. */
export class EventDecodeError extends Data.TaggedError("EventDecodeError")<{
  /** The event's id, when it has one. */
  readonly id: string | undefined
  /** The event's type name, when it has one. */
  readonly type: string | undefined
  /** Where in the event the first problem is, as `data.emails[0].value` (empty for the event itself). */
  readonly path: string
  /** What is wrong there. */
  readonly reason: string
  /** The event as it was received, so it can be dead-lettered whole. */
  readonly raw: unknown
}> {
  override get message(): string {
    const where = this.path === "" ? "" : ` at ${this.path}`
    return `event ${this.id ?? "(no id)"} of type ${this.type ?? "(no type)"} does not match its schema${where}: ${this.reason}`
  }
}

const checkByType: ReadonlyMap<string, (v: unknown) => boolean> = new Map(Object.entries(checks))
/** The schema of a known type; reads only that getter of `schemas`, so only its family is built. */
const schemaOf = (type: string): Schema.Top | undefined =>
  Object.hasOwn(schemas, type) ? (schemas[type as EventType] as Schema.Top) : undefined

/** Whether the spec knows this type name. */
export const isType = (name: string): name is Type => checkByType.has(name)

/** Whether an event is of a type the spec knows (else it is an `UnknownEvent`). */
export const isKnown = (event: Any): event is Event => checkByType.has(event.event)

const isUnknownEnvelope = (v: Record<string, unknown>): boolean =>
  v.object === "event" &&
  typeof v.id === "string" &&
  isObject(v.data) &&
  isDateTime(v.created_at) &&
  (v.context === undefined ? !Object.hasOwn(v, "context") : isObject(v.context))

/**
 * Decodes one event. Never throws; a known type that breaks its schema is an
 * `EventDecodeError` naming the id, the type and the path.
 */
export const decode = (input: unknown): Result.Result<Any, EventDecodeError> => {
  if (isObject(input) && typeof input.event === "string") {
    const check = checkByType.get(input.event)
    if (check === undefined ? isUnknownEnvelope(input) : check(input)) {
      return Result.succeed(input as unknown as Any)
    }
  }
  return explain(input)
}

const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

/** The slow path: the Effect Schema says what is wrong and where. */
const explain = (input: unknown): Result.Result<Any, EventDecodeError> => {
  const type = isObject(input) && typeof input.event === "string" ? input.event : undefined
  const id = isObject(input) && typeof input.id === "string" ? input.id : undefined
  const schema = (type !== undefined && schemaOf(type)) || UnknownEvent
  const decoded = Schema.decodeUnknownResult(schema as typeof UnknownEvent)(input)
  // The lean check and the schema accept the same values (a test holds them to it);
  // should they ever disagree, the schema is the reference.
  if (Result.isSuccess(decoded)) return Result.succeed(input as Any)
  const first = formatIssue(decoded.failure.issue).issues[0]
  const keys = (first?.path ?? []).map((segment) =>
    typeof segment === "object" ? segment.key : segment
  )
  return Result.fail(
    new EventDecodeError({
      id,
      type,
      path: formatPath(keys),
      reason: withReceived(first?.message ?? "invalid event", input, keys),
      raw: input
    })
  )
}

/** Says what was there instead, so the error is enough to fix the payload. */
const withReceived = (
  message: string,
  input: unknown,
  keys: ReadonlyArray<PropertyKey>
): string => {
  let parent: unknown
  let value: unknown = input
  for (const key of keys) {
    parent = value
    value = isObject(value) || Array.isArray(value) ? (value as any)[key] : undefined
  }
  const last = keys.at(-1)
  if (
    last !== undefined &&
    value === undefined &&
    !(isObject(parent) && Object.hasOwn(parent, last))
  ) {
    return "required field is missing"
  }
  const shown = JSON.stringify(value) ?? String(value)
  return `${message}, got ${shown.length > 60 ? `${shown.slice(0, 60)}…` : shown}`
}

const formatPath = (keys: ReadonlyArray<PropertyKey>): string =>
  keys
    .map((key, i) =>
      typeof key === "number"
        ? `[${key}]`
        : /^[A-Za-z_$][\w$]*$/.test(String(key))
          ? `${i === 0 ? "" : "."}${String(key)}`
          : `[${JSON.stringify(String(key))}]`
    )
    .join("")

/** Decodes one event from its JSON text (a webhook body, a dead letter). */
export const decodeJson = (text: string): Result.Result<Any, EventDecodeError> => {
  let input: unknown
  try {
    input = JSON.parse(text)
  } catch (error) {
    return Result.fail(
      new EventDecodeError({
        id: undefined,
        type: undefined,
        path: "",
        reason: `not JSON: ${(error as Error).message}`,
        raw: text
      })
    )
  }
  return decode(input)
}

/** The event as WorkOS sent it, ready for `JSON.stringify`: decoding kept every field. */
export const toJson = (event: Any): unknown => event

/** When the event happened, as a `Date`; `event.created_at` keeps the string WorkOS sent. */
export const createdAt = (event: Any): Date => new Date(event.created_at)

/**
 * A WorkOS organization id (`org_01EHWNCE74X7JSDV0X3SZ3KJNY`), for config files that
 * filter by organization: a name such as `acme` would match no event at all.
 */
export const OrganizationId = Schema.String.check(
  Schema.isPattern(/^org_[0-9A-Za-z]+$/, {
    message: "expected a WorkOS organization id such as org_01EHWNCE74X7JSDV0X3SZ3KJNY"
  })
)

// ---------------------------------------------------------------------------
// Field paths

/** How far a path goes into a schema: all the way, or the step where it stops and the keys there. */
type Reach =
  | { readonly found: true }
  | { readonly found: false; readonly step: number; readonly keys: ReadonlyArray<string> }

const reach = (ast: SchemaAST.AST, path: ReadonlyArray<string>, step: number): Reach => {
  switch (ast._tag) {
    case "Suspend":
      return reach(ast.thunk(), path, step)
    case "Unknown":
    case "Any":
    case "ObjectKeyword":
      return { found: true }
    case "Union": {
      // Found in any member; otherwise the member that got furthest says what is there.
      let furthest: Reach & { found: false } = { found: false, step, keys: [] }
      const keys = new Set<string>()
      for (const member of ast.types) {
        const r = reach(member, path, step)
        if (r.found) return r
        if (r.step > furthest.step) {
          furthest = r
          keys.clear()
        }
        if (r.step === furthest.step) for (const k of r.keys) keys.add(k)
      }
      return { found: false, step: furthest.step, keys: [...keys] }
    }
    default:
      break
  }
  if (step === path.length) return { found: true }
  const key = path[step]!
  if (ast._tag === "Objects") {
    const property = ast.propertySignatures.find((p) => p.name === key)
    if (property !== undefined) return reach(property.type, path, step + 1)
    // A record (`{ [key: string]: ... }`) has every key.
    if (ast.indexSignatures.length > 0) return { found: true }
    return { found: false, step, keys: ast.propertySignatures.map((p) => String(p.name)) }
  }
  if (ast._tag === "Arrays" && /^\d+$/.test(key)) {
    const element = ast.elements[Number(key)] ?? ast.rest[0]
    if (element !== undefined) return reach(element, path, step + 1)
  }
  return { found: false, step, keys: [] }
}

const listTypes = (types: ReadonlyArray<string>): string =>
  types.length <= 3
    ? types.join(", ")
    : `${types.slice(0, 3).join(", ")} and ${types.length - 3} more`

/**
 * Whether a dotted path (`data.email`, `data.emails.0.value`) names a field of events
 * of at least one of these types, as the spec has them: undefined when it does, else
 * a sentence saying where it stops, with the closest field there.
 */
export const pathProblem = (
  types: ReadonlyArray<Type>,
  path: ReadonlyArray<string>
): string | undefined => {
  let furthest = -1
  const keys = new Set<string>()
  for (const type of types) {
    const schema = schemaOf(type)
    if (schema === undefined) continue
    const r = reach(schema.ast, path, 0)
    if (r.found) return undefined
    if (r.step > furthest) {
      furthest = r.step
      keys.clear()
    }
    if (r.step === furthest) for (const k of r.keys) keys.add(k)
  }
  if (furthest < 0) return undefined
  const where = path.slice(0, furthest).join(".")
  const missing = [...path.slice(0, furthest + 1)].join(".")
  const within = where === "" ? "" : `${where}.`
  const suggestion = closest(path[furthest]!, keys)
  const hint =
    suggestion.length > 0
      ? `; did you mean ${within}${suggestion[0]}?`
      : keys.size > 0
        ? `; ${where === "" ? "an event" : where} has ${[...keys].sort().join(", ")}`
        : ""
  const of =
    types.length === checkByType.size
      ? "any event"
      : `events of ${types.length === 1 ? "type" : "types"} ${listTypes(types)}`
  return `${missing} is not a field of ${of}${hint}`
}
