import { defineConfig } from "vitest/config";
export default defineConfig({
  test: {
    root: "/work/main/test",
    include: ["pull-push.e2e.test.ts"],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 240_000,
  },
});
