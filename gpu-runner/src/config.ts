/**
 * The runner's settings, read from the environment once at start. Every value is checked here so a typo fails
 * the start with a clear message instead of misbehaving later.
 *
 *   RUNNER_SECRET (required)  shared secret: the edge's Bearer token to us, ours to the edge
 *   PORT=11435 HOST=127.0.0.1 where to listen; RUNNER_URL (default http://HOST:PORT) is what the edge calls
 *   RUNNER_ID (default <hostname>-<port>)    EDGE_URL  heartbeats and, by default, blobs go there
 *   BLOB_SOURCE=edge|s3       s3: S3_BUCKET (required), S3_REGION|AWS_REGION (auto), S3_ENDPOINT,
 *                             S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_KEY_PREFIX (blobs/), S3_FORCE_PATH_STYLE
 *   CACHE_DIR=./.corral/runner-cache  CACHE_MAX_BYTES=50 GiB
 *   THREADS (cores)  PARALLEL=4 (sequences per model)  GPU=auto|false|cuda|vulkan|metal
 *   FLASH_ATTENTION=auto|on|off (llama.cpp's flash attention for generation contexts; auto: where supported)
 *   MEMORY_BUDGET_BYTES (default: 90% of VRAM on a GPU, 80% of RAM on CPU)
 *   NUM_CTX=4096  DEFAULT_KEEP_ALIVE_SECONDS=300 (negative: forever)  MAX_QUEUE=64 (waiting requests per model)
 *   HEARTBEAT_INTERVAL_MS=2000
 */
import { availableParallelism, hostname, totalmem } from "node:os";

/** Models live in VRAM when there is a GPU, in RAM otherwise; some headroom stays free for the rest. */
export function defaultMemoryBudget(vramTotalBytes: number | undefined): number {
  return vramTotalBytes ? Math.floor(vramTotalBytes * 0.9) : Math.floor(totalmem() * 0.8);
}

import { resolve } from "node:path";

export type GpuSetting = "auto" | false | "cuda" | "vulkan" | "metal";

/** node-llama-cpp's `flashAttention` context option: "auto" lets llama.cpp decide per model and device. */
export type FlashAttentionSetting = "auto" | boolean;

export type BlobSourceConfig =
  | { kind: "edge" }
  | {
      kind: "s3";
      bucket: string;
      region: string;
      endpoint?: string;
      accessKeyId?: string;
      secretAccessKey?: string;
      keyPrefix: string;
      forcePathStyle: boolean;
    };

export interface RunnerConfig {
  port: number;
  host: string;
  runnerId: string;
  /** How the edge reaches this runner (sent in heartbeats). */
  runnerUrl: string;
  /** The edge; heartbeats and (by default) blobs go there. Without it the runner runs standalone. */
  edgeUrl?: string;
  secret: string;
  cacheDir: string;
  cacheMaxBytes: number;
  threads: number;
  parallel: number;
  /** llama.cpp's llama-server binary for vision models (LLAMA_SERVER); unset: images answer 400. */
  llamaServer?: string;
  /** Unset: decided once the GPU is known (see defaultMemoryBudget). */
  memoryBudgetBytes?: number;
  gpu: GpuSetting;
  flashAttention: FlashAttentionSetting;
  defaultNumCtx: number;
  defaultKeepAliveMs: number;
  maxWaiting: number;
  heartbeatIntervalMs: number;
  blobSource: BlobSourceConfig;
}

type Env = Record<string, string | undefined>;

const GiB = 1024 ** 3;

function integer(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name} must be an integer ≥ ${min}, got "${raw}"`);
  return value;
}

function text(env: Env, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw === "" ? undefined : raw;
}

/**
 * Auto by default, as llama-server: llama.cpp turns it off where the model or device does not support it. On the
 * benchmark model (CPU, alternating rounds) the runner gave 207/341/553 tok/s at 1/4/32 streams with it and
 * 186/298/439 without.
 */
function flashAttentionSetting(raw: string | undefined): FlashAttentionSetting {
  switch (raw ?? "auto") {
    case "auto":
      return "auto";
    case "on":
    case "true":
    case "1":
      return true;
    case "off":
    case "false":
    case "0":
      return false;
    default:
      throw new Error(`FLASH_ATTENTION must be auto, on or off, got "${raw}"`);
  }
}

function gpuSetting(raw: string | undefined): GpuSetting {
  switch (raw ?? "auto") {
    case "auto":
      return "auto";
    case "false":
    case "off":
    case "cpu":
      return false;
    case "cuda":
    case "vulkan":
    case "metal":
      return raw as GpuSetting;
    default:
      throw new Error(`GPU must be auto, false, cuda, vulkan or metal, got "${raw}"`);
  }
}

export function loadConfig(env: Env = process.env): RunnerConfig {
  const secret = text(env, "RUNNER_SECRET");
  if (!secret) throw new Error("RUNNER_SECRET is required: the edge authenticates to the runner with it");
  const port = integer(env, "PORT", 11435);
  const host = text(env, "HOST") ?? "127.0.0.1";
  const edgeUrl = text(env, "EDGE_URL")?.replace(/\/+$/, "");
  const source = text(env, "BLOB_SOURCE") ?? "edge";
  let blobSource: BlobSourceConfig;
  if (source === "edge") {
    if (!edgeUrl) throw new Error("EDGE_URL is required when BLOB_SOURCE=edge");
    blobSource = { kind: "edge" };
  } else if (source === "s3") {
    const bucket = text(env, "S3_BUCKET");
    if (!bucket) throw new Error("S3_BUCKET is required when BLOB_SOURCE=s3");
    blobSource = {
      kind: "s3",
      bucket,
      region: text(env, "S3_REGION") ?? text(env, "AWS_REGION") ?? "auto",
      endpoint: text(env, "S3_ENDPOINT"),
      accessKeyId: text(env, "S3_ACCESS_KEY_ID"),
      secretAccessKey: text(env, "S3_SECRET_ACCESS_KEY"),
      keyPrefix: env.S3_KEY_PREFIX ?? "blobs/",
      forcePathStyle: text(env, "S3_FORCE_PATH_STYLE") === "true",
    };
  } else {
    throw new Error(`BLOB_SOURCE must be "edge" or "s3", got "${source}"`);
  }
  // Like OLLAMA_KEEP_ALIVE in seconds: negative keeps models loaded forever.
  const keepAliveSeconds = integer(env, "DEFAULT_KEEP_ALIVE_SECONDS", 300, Number.MIN_SAFE_INTEGER);
  return {
    port,
    host,
    runnerId: text(env, "RUNNER_ID") ?? `${hostname()}-${port}`,
    runnerUrl: text(env, "RUNNER_URL") ?? `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    edgeUrl,
    secret,
    cacheDir: resolve(text(env, "CACHE_DIR") ?? "./.corral/runner-cache"),
    cacheMaxBytes: integer(env, "CACHE_MAX_BYTES", 50 * GiB, 1),
    // node-llama-cpp's own default is max(cores, 4): on a 2-core machine that oversubscribes ~300x slower.
    threads: integer(env, "THREADS", availableParallelism(), 1),
    parallel: integer(env, "PARALLEL", 4, 1),
    llamaServer: text(env, "LLAMA_SERVER"),
    memoryBudgetBytes: env.MEMORY_BUDGET_BYTES ? integer(env, "MEMORY_BUDGET_BYTES", 0, 1) : undefined,
    gpu: gpuSetting(text(env, "GPU")),
    flashAttention: flashAttentionSetting(text(env, "FLASH_ATTENTION")),
    defaultNumCtx: integer(env, "NUM_CTX", 4096, 16),
    defaultKeepAliveMs: keepAliveSeconds < 0 ? Number.POSITIVE_INFINITY : keepAliveSeconds * 1000,
    maxWaiting: integer(env, "MAX_QUEUE", 64, 0),
    heartbeatIntervalMs: integer(env, "HEARTBEAT_INTERVAL_MS", 2000, 100),
    blobSource,
  };
}
