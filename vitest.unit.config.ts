import { defineConfig } from "vitest/config";

// Unit tests that run in Node: protocol/ and gpu-runner/. Worker tests run inside workerd (edge/vitest.config.ts),
// cross-process tests in test/vitest.config.ts.
export default defineConfig({
  test: {
    include: ["protocol/src/**/*.test.ts", "gpu-runner/src/**/*.test.ts", "scripts/**/*.test.ts", "infra/**/*.test.ts"],
    testTimeout: 60_000,
    // Hooks start real servers and llama.cpp (server.test.ts, main.test.ts): the 10 s default is tight under load.
    hookTimeout: 60_000,
    pool: "forks",
  },
});
