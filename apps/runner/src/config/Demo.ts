/** The embedded config of `workos-relay demo`. */
export const demo = (options: { readonly statePath: string; readonly rate: number }): unknown => ({
  source: { type: "demo", rate: options.rate },
  state: { sqlite: options.statePath },
  sinks: { console: { type: "console" } }
})
