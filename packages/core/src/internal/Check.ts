// The building blocks of the generated lean checks (../generated/Checks.ts).
export { isDateTime } from "./DateTime.ts"

export const hasOwn = Object.hasOwn

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v)

export const isArrayOf = (v: unknown, item: (v: unknown) => boolean): boolean => {
  if (!Array.isArray(v)) return false
  for (let i = 0; i < v.length; i++) if (!item(v[i])) return false
  return true
}

export const everyValue = (v: Record<string, unknown>, value: (v: unknown) => boolean): boolean => {
  for (const key in v) if (hasOwn(v, key) && !value(v[key])) return false
  return true
}

export const everyKey = (v: Record<string, unknown>, key: (k: string) => boolean): boolean => {
  for (const k in v) if (hasOwn(v, k) && !key(k)) return false
  return true
}
