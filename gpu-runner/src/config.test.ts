import { describe, expect, it } from "vitest";
import { defaultMemoryBudget, loadConfig } from "./config";

const base = { RUNNER_SECRET: "s", EDGE_URL: "http://127.0.0.1:11434/" };

describe("loadConfig", () => {
  it("has working defaults", () => {
    const config = loadConfig(base);
    expect(config).toMatchObject({
      port: 11435,
      host: "127.0.0.1",
      edgeUrl: "http://127.0.0.1:11434",
      runnerUrl: "http://127.0.0.1:11435",
      parallel: 4,
      gpu: "auto",
      flashAttention: "auto",
      defaultNumCtx: 4096,
      defaultKeepAliveMs: 300_000,
      heartbeatIntervalMs: 2000,
      blobSource: { kind: "edge" },
    });
    expect(config.threads).toBeGreaterThanOrEqual(1);
    expect(config.memoryBudgetBytes).toBeUndefined();
    expect(config.cacheDir.endsWith(".corral/runner-cache")).toBe(true);
  });

  it.each([
    [
      { THREADS: "1", PARALLEL: "8", GPU: "false", PORT: "0" },
      { threads: 1, parallel: 8, gpu: false, port: 0 },
    ],
    [{ DEFAULT_KEEP_ALIVE_SECONDS: "-1" }, { defaultKeepAliveMs: Number.POSITIVE_INFINITY }],
    [{ FLASH_ATTENTION: "on" }, { flashAttention: true }],
    [{ FLASH_ATTENTION: "off" }, { flashAttention: false }],
    [{ MEMORY_BUDGET_BYTES: "1000000" }, { memoryBudgetBytes: 1_000_000 }],
    [
      { RUNNER_URL: "http://10.0.0.5:9000", RUNNER_ID: "gpu-1" },
      { runnerUrl: "http://10.0.0.5:9000", runnerId: "gpu-1" },
    ],
    [
      { BLOB_SOURCE: "s3", S3_BUCKET: "b", S3_ENDPOINT: "https://r2.example", S3_ACCESS_KEY_ID: "k" },
      {
        blobSource: {
          kind: "s3",
          bucket: "b",
          endpoint: "https://r2.example",
          accessKeyId: "k",
          keyPrefix: "blobs/",
          region: "auto",
        },
      },
    ],
  ])("reads %j", (env, expected) => {
    expect(loadConfig({ ...base, ...env })).toMatchObject(expected);
  });

  it.each([
    [{ RUNNER_SECRET: "" }, /RUNNER_SECRET is required/],
    [{ EDGE_URL: "" }, /EDGE_URL is required/],
    [{ THREADS: "0" }, /THREADS must be an integer ≥ 1/],
    [{ PARALLEL: "two" }, /PARALLEL must be an integer/],
    [{ GPU: "tpu" }, /GPU must be/],
    [{ FLASH_ATTENTION: "yes" }, /FLASH_ATTENTION must be auto, on or off/],
    [{ BLOB_SOURCE: "s3" }, /S3_BUCKET is required/],
    [{ BLOB_SOURCE: "ftp" }, /BLOB_SOURCE must be/],
  ])("refuses %j", (env, message) => {
    expect(() => loadConfig({ ...base, ...env })).toThrow(message);
  });
});

describe("defaultMemoryBudget", () => {
  it("is 90% of VRAM on a GPU and a share of RAM on CPU", () => {
    expect(defaultMemoryBudget(80 * 1024 ** 3)).toBe(Math.floor(72 * 1024 ** 3));
    expect(defaultMemoryBudget(undefined)).toBeGreaterThan(0);
  });
});
