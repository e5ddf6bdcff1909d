import { fileURLToPath } from "node:url";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Worker tests run inside workerd with the real wrangler.toml bindings (D1, R2, Durable Objects).
export default defineConfig({
  plugins: [
    cloudflareTest(async () => ({
      wrangler: { configPath: here("../wrangler.toml") },
      miniflare: {
        bindings: {
          ADMIN_KEY: "test-admin-key",
          RUNNER_SECRET: "test-runner-secret",
          TEST_MIGRATIONS: await readD1Migrations(here("./migrations")),
        },
        // Stands in for the Workers VPC network binding (RUNNER_NETWORK): tests that want the private path pass it
        // as RUNNER_NETWORK; the rest reach their in-test runners by plain fetch, as the local stack does.
        serviceBindings: { TEST_RUNNER_NETWORK: "fake-runner-network" },
        workers: [
          {
            name: "fake-runner-network",
            modules: true,
            scriptPath: here("./test/fake-runner-network.js"),
            compatibilityDate: "2026-04-26",
            compatibilityFlags: ["enable_request_signal"],
          },
        ],
      },
    })),
  ],
  test: {
    root: here("."),
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    setupFiles: ["./test/apply-migrations.ts"],
    globalSetup: ["./test/network-servers.ts"],
    testTimeout: 30_000,
  },
});
