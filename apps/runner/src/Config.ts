/**
 * The config file: YAML (JSON is YAML too), `${VAR}` and `${VAR:-default}` read
 * from the environment, decoded with Schema. Every problem of a file is reported
 * at once, each with its path, and a misspelt key with the closest known one.
 *
 * A sink entry mixes the runner's keys (type, module, events, organizations, batch,
 * retry) with the sink's own options, which its definition's `config` Schema decodes.
 *
 * The package's `Config` namespace: each part lives in its own module of ./config/.
 */
export { decode } from "./config/Decode.ts"
export { demo } from "./config/Demo.ts"
export { interpolate } from "./config/Interpolate.ts"
export { jsonSchema } from "./config/JsonSchema.ts"
export { load, parse } from "./config/Load.ts"
export { ConfigError, type Problem } from "./config/Problem.ts"
export {
  defaultSourceName,
  defaults,
  File,
  type NamedSource,
  type RelayConfig,
  type RetrySettings,
  redactedForDisplay,
  type SinkConfig,
  SinkKeys,
  type Source,
  type State,
  sourceNamePattern,
  sourcesOf,
  sourcesOfSink
} from "./config/Schema.ts"
