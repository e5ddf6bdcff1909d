/** The gpu-runner's public API, for the local stack and cross-process tests. */
export { BlobCache, type BlobCacheOptions, type BlobLease } from "./blob-cache";
export { type BlobSource, EdgeBlobSource, S3BlobSource } from "./blob-source";
export { type Clock, FakeClock, systemClock } from "./clock";
export { loadConfig, type RunnerConfig } from "./config";
export { Heartbeat } from "./heartbeat";
export { RunnerMetrics } from "./metrics";
export { DEFAULT_KEEP_ALIVE_MS, ModelPool, type ModelPoolOptions } from "./model-pool";
export { type RunningRunner, startRunner } from "./runner-app";
export { createRunnerServer, type RunnerServer, type RunnerServerDeps } from "./server";
