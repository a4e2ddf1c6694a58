/** The oldest Node.js the runner works on: `node:sqlite` with the options the state store uses. */
export const minimum = [22, 19] as const

/** Why this Node.js (`process.versions.node`) cannot run the runner, or undefined when it can. */
export const problem = (version: string): string | undefined => {
  const [major = 0, minor = 0] = version.split(".").map(Number)
  if (major > minimum[0] || (major === minimum[0] && minor >= minimum[1])) return undefined
  return `workos-relay needs Node.js ${minimum.join(".")} or newer (for node:sqlite); this is Node.js ${version}. Install a current LTS (https://nodejs.org) and run it again.`
}
