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
