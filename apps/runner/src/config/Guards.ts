/** Type guards for the document as written, before (or whether or not) it decodes. */
export const isRecord = (v: unknown): v is Record<string, any> =>
  typeof v === "object" && v !== null && !Array.isArray(v)
export const isString = (v: unknown): v is string => typeof v === "string"
