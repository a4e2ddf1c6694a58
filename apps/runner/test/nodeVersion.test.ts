import { describe, expect, it } from "@effect/vitest"
import { problem } from "../src/internal/nodeVersion.ts"

describe("the Node.js version check", () => {
  it("lets 22.19 and newer run, and tells older ones what to install", () => {
    for (const ok of ["22.19.0", "22.20.1", "23.0.0", "24.21.0", process.versions.node])
      expect(problem(ok)).toBeUndefined()
    expect(problem("20.20.2")).toBe(
      "workos-relay needs Node.js 22.19 or newer (for node:sqlite); this is Node.js 20.20.2. Install a current LTS (https://nodejs.org) and run it again."
    )
    expect(problem("22.18.9")).toContain("this is Node.js 22.18.9")
    expect(problem("18.0.0")).toContain("22.19 or newer")
  })
})
