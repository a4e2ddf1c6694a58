/** Which events a sink takes: its type patterns and the organizations it is limited to. */
import { EventPattern } from "@workos-relay/core"

/** Whether a sink takes an event of this type (undefined: unknown) with this payload. */
export type Accepts = (type: string | undefined, raw: unknown) => boolean

/**
 * A sink's filter: every list of patterns must select the type (definition, file,
 * entry: an intersection), and the organization must be one of `organizations`
 * when the event names one.
 */
export const makeFilter = (
  patterns: ReadonlyArray<ReadonlyArray<string>>,
  organizations: ReadonlyArray<string> | undefined
): Accepts => {
  const byType = new Map<string, boolean>()
  const orgs = organizations === undefined ? undefined : new Set(organizations)
  return (type, raw) => {
    if (type !== undefined && patterns.length > 0) {
      let ok = byType.get(type)
      if (ok === undefined) {
        ok = patterns.every((list) => list.some((p) => EventPattern.matchesName(p, type)))
        byType.set(type, ok)
      }
      if (!ok) return false
    }
    if (orgs !== undefined) {
      const org = organizationOf(raw)
      if (org !== undefined && !orgs.has(org)) return false
    }
    return true
  }
}

/** The organization an event belongs to, when its payload says. */
export const organizationOf = (raw: unknown): string | undefined => {
  const data = (raw as any)?.data
  if (typeof data !== "object" || data === null) return undefined
  if (typeof data.organization_id === "string") return data.organization_id
  const type = (raw as any).event
  if (
    typeof type === "string" &&
    type.startsWith("organization.") &&
    !type.startsWith("organization_") &&
    typeof data.id === "string"
  )
    return data.id
  return undefined
}
