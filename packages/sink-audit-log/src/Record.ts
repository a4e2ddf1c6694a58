/**
 * An audit record: who did what to what, when and from where, plus the event as
 * WorkOS sent it. Pure: `fromEvent` touches no I/O, so the mapping is tested alone.
 *
 * Who (the actor) comes from `context.actor` when WorkOS says, else from the
 * payload's user fields; what was acted on (the targets) depends on the event
 * family. The README has the table; `families` below is that table in code. Every
 * field is read defensively: an event that breaks the spec is recorded too.
 */
import type { Event } from "@workos-relay/core"
import { EventPattern, Sink } from "@workos-relay/core"

/** Who did it. */
export interface Actor {
  readonly id: string | null
  /** A label a person reads: a name or an email. */
  readonly name: string | null
  /** Where the action came from when WorkOS says (`api`, `dashboard`, `system`, ...). */
  readonly source: string | null
}

/** One thing that was acted on. */
export interface Target {
  readonly type: string
  readonly id: string
}

/** The hashed content of a record (every field below is covered by the chain). */
export interface AuditRecord {
  /** The event id; unique in a store. */
  readonly id: string
  readonly type: string
  /** When WorkOS says the event happened, ISO-8601 in UTC (`2026-01-02T03:04:05.000Z`). */
  readonly created_at: string
  readonly organization_id: string | null
  readonly actor: Actor | null
  readonly targets: ReadonlyArray<Target>
  readonly ip_address: string | null
  readonly user_agent: string | null
  /** The event exactly as WorkOS sent it, unknown fields included. */
  readonly event: unknown
  /**
   * Where the event breaks the spec, as `data.resource_type_slug: required field is
   * missing`; absent when it matches it. Covered by the chain when present.
   */
  readonly schema_mismatch?: string
}

/** A record as kept in a store: its place in the chain and its hashes. */
export interface StoredRecord extends AuditRecord {
  /** Position in the chain: 1, 2, 3, ... (never reused, even after retention). */
  readonly seq: number
  /** The previous record's `hash` (the anchor's, or 64 zeros, for the first one). */
  readonly prev_hash: string
  /** SHA-256 (lowercase hex) over `prev_hash` and the record's canonical JSON (see Chain). */
  readonly hash: string
}

type Data = Record<string, unknown>

const isData = (v: unknown): v is Data => typeof v === "object" && v !== null && !Array.isArray(v)
const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null)
const obj = (v: unknown): Data => (isData(v) ? v : {})

const target = (type: string, id: unknown): ReadonlyArray<Target> => {
  const s = str(id)
  return s === null ? [] : [{ type, id: s }]
}

/** The payload's own object: `{ object: "user", id }` names itself. */
const self = (data: Data, fallbackType: string): ReadonlyArray<Target> =>
  target(str(data.object) ?? fallbackType, data.id)

const userActor = (data: Data): Actor | null => {
  const id = str(data.user_id)
  const email = str(data.email)
  return id === null && email === null ? null : { id, name: email, source: null }
}

interface Family {
  /** Event type patterns this row covers (first matching row wins). */
  readonly patterns: ReadonlyArray<string>
  /** Who acted, from the payload, when `context.actor` is absent. */
  readonly actor?: (data: Data) => Actor | null
  readonly targets: (data: Data, type: string) => ReadonlyArray<Target>
}

/** The mapping table (kept in the same order as the README's). */
export const families: ReadonlyArray<Family> = [
  {
    patterns: ["authentication.*", "action.*", "radar.*"],
    actor: userActor,
    targets: (d) => target("user", d.user_id)
  },
  {
    patterns: ["vault.byok_key.*"],
    targets: (d) => target("byok_key", d.key_provider)
  },
  {
    patterns: ["vault.*"],
    actor: (d) =>
      str(d.actor_id) === null && str(d.actor_name) === null
        ? null
        : { id: str(d.actor_id), name: str(d.actor_name), source: str(d.actor_source) },
    targets: (d) => [
      ...target("vault_object", d.kv_name),
      ...target("vault_key", d.key_id),
      ...(Array.isArray(d.key_ids) ? d.key_ids.flatMap((k) => target("vault_key", k)) : []),
      ...target("vault_key", d.key_name)
    ]
  },
  {
    patterns: ["session.*"],
    actor: (d) => {
      // An impersonated session is the impersonator's doing.
      const imp = obj(d.impersonator)
      return str(imp.email) !== null
        ? { id: null, name: str(imp.email), source: "impersonation" }
        : userActor(d)
    },
    targets: (d) => [...self(d, "session"), ...target("user", d.user_id)]
  },
  {
    patterns: ["invitation.*"],
    actor: (d) => {
      const id = str(d.inviter_user_id)
      return id === null ? null : { id, name: null, source: null }
    },
    targets: (d) => [...self(d, "invitation"), ...target("user", d.accepted_user_id)]
  },
  {
    patterns: ["dsync.group.user_added", "dsync.group.user_removed"],
    targets: (d) => [
      ...target("directory_user", obj(d.user).id),
      ...target("directory_group", obj(d.group).id),
      ...target("directory", d.directory_id)
    ]
  },
  {
    patterns: ["dsync.user.*", "dsync.group.*", "dsync.token.*"],
    targets: (d, type) => [
      ...self(d, type.startsWith("dsync.user.") ? "directory_user" : "directory_group"),
      ...target("directory", d.directory_id)
    ]
  },
  {
    patterns: ["dsync.*"],
    targets: (d) => self(d, "directory")
  },
  {
    patterns: ["connection.saml_certificate_*"],
    targets: (d) => self(obj(d.connection), "connection")
  },
  {
    patterns: ["organization_domain.verification_failed"],
    targets: (d) => self(obj(d.organization_domain), "organization_domain")
  },
  {
    patterns: [
      "organization_membership.*",
      "email_verification.*",
      "magic_auth.*",
      "password_reset.*"
    ],
    actor: userActor,
    targets: (d) => [...self(d, "unknown"), ...target("user", d.user_id)]
  },
  {
    patterns: ["pipes.connected_account.*"],
    actor: userActor,
    targets: (d) => [
      ...target("connected_account", d.id),
      ...target("data_integration", d.data_integration_id)
    ]
  },
  {
    patterns: ["group.member_added", "group.member_removed"],
    targets: (d) => [
      ...target("group", d.group_id),
      ...target("organization_membership", d.organization_membership_id)
    ]
  },
  {
    patterns: ["role.*", "organization_role.*"],
    targets: (d) => target(str(d.object) ?? "role", d.slug)
  },
  {
    patterns: ["agent.registration.*"],
    targets: (d) => [...target("agent_registration", d.agent_registration_id ?? d.id)]
  },
  {
    // user.*, organization.*, connection.*, api_key.*, flag.*, group.*, permission.*,
    // waitlist_user.*, and any type the spec does not know yet: the payload's own object.
    patterns: ["*"],
    targets: (d) => (str(d.object) !== null ? self(d, "unknown") : [])
  }
]

const familyByType = new Map<string, Family>()

const familyOf = (type: string): Family => {
  let family = familyByType.get(type)
  if (family === undefined) {
    family = families.find((f) => f.patterns.some((p) => EventPattern.matchesName(p, type)))!
    // Type names are few (about a hundred), so the cache stays small.
    if (familyByType.size < 10_000) familyByType.set(type, family)
  }
  return family
}

/** The organization an event belongs to, when it names one. */
const organizationOf = (type: string, data: Data): string | null =>
  str(data.organization_id) ??
  (type.startsWith("organization.") ? str(data.id) : null) ??
  str(obj(data.organization_domain).organization_id) ??
  str(obj(data.connection).organization_id)

/** ISO-8601 in UTC with milliseconds, so that text order is time order in every store. */
export const normalizeTime = (time: string): string => {
  // Most times come in that form already: then there is no Date to make and write out.
  if (isNormalTime(time)) return time
  const ms = Date.parse(time)
  return Number.isNaN(ms) ? time : new Date(ms).toISOString()
}

const normalForm = /^(\d{4})-(\d{2})-(\d{2})T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$/

/** What `toISOString` would write for this same time (a day that exists, no hour 24, no second 60). */
const isNormalTime = (time: string): boolean => {
  const match = normalForm.exec(time)
  if (match === null) return false
  const year = Number(match[1])
  const month = Number(match[2])
  const day = Number(match[3])
  if (month < 1 || month > 12 || day < 1) return false
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  const days = month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31
  return day <= days
}

/**
 * The audit record of one event. An event that breaks the spec (a raw sink gets it
 * marked: `Sink.mismatchOf`) is recorded as WorkOS sent it, with `schema_mismatch`.
 */
export const fromEvent = (event: Event.Any): AuditRecord => {
  const mismatch = Sink.mismatchOf(event)
  const data = obj(event.data)
  const context = obj(event.context)
  const family = familyOf(event.event)
  const contextActor = obj(context.actor)
  const actor: Actor | null =
    str(contextActor.id) !== null || str(contextActor.name) !== null
      ? { id: str(contextActor.id), name: str(contextActor.name), source: str(contextActor.source) }
      : (family.actor?.(data) ?? null)
  return {
    id: event.id,
    type: event.event,
    // A string only: `Date.parse(42)` reads a number as a year, 2042. (Decoding saw to
    // it but for an event that breaks the spec, which `unkeepable` then refuses.)
    created_at:
      typeof event.created_at === "string" ? normalizeTime(event.created_at) : event.created_at,
    organization_id: organizationOf(event.event, data),
    actor,
    targets: family.targets(data, event.event),
    ip_address: str(data.ip_address) ?? str(context.ip_address),
    user_agent: str(data.user_agent) ?? str(context.user_agent),
    event,
    ...(mismatch === undefined ? {} : { schema_mismatch: Sink.formatMismatch(mismatch) })
  }
}

/**
 * Why a record cannot be kept, or undefined: an event that breaks the spec may have no
 * `created_at` that is a time, and a record without one could be neither ordered,
 * queried by time nor pruned. (Every other event's time was checked by decoding.)
 */
export const unkeepable = (record: AuditRecord): string | undefined =>
  record.schema_mismatch === undefined || isNormalTime(record.created_at)
    ? undefined
    : `event ${record.id} (${record.type}) has no created_at that is a time (got ${JSON.stringify((record.event as { created_at?: unknown }).created_at) ?? "none"}): an audit record needs one`
