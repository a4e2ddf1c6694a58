import { defineConfig } from "vitest/config"

// Settings every package's tests share. Workspace packages resolve to their
// TypeScript sources (the "@workos-relay/source" export condition), so tests
// never wait on a build and never run stale output.
export const shared = defineConfig({
  resolve: { conditions: ["@workos-relay/source"] },
  ssr: { resolve: { conditions: ["@workos-relay/source"] } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000
  }
})
