/**
 * One example event of every known type, built from the field examples of WorkOS's
 * spec. For tests, fixtures and documentation; not part of the main entry point.
 */
export { examples } from "./generated/Examples.ts"
