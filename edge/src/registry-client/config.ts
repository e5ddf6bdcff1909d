/**
 * Settings of pull and push, from Worker vars (wrangler.toml `[vars]`, `--var` in the local stack). Tests shrink
 * part sizes and stall timeouts through them; production keeps the defaults.
 */
import type { Env } from "../env";
import type { BlobFetcher } from "./blob-fetcher";
import { DEFAULT_DNS_RESOLVER, type NetworkSettings } from "./network";

/** The bindings and vars pull/push use beyond the lead's Env (see edge/PULL_PUSH.md for the wrangler lines). */
export type OciEnv = Env & {
  /** One Durable Object per (tenant, blob digest): shares one download between concurrent pulls. Optional. */
  BLOB_FETCHER?: DurableObjectNamespace<BlobFetcher>;
  /** Worker secret from which the AES-GCM key for stored registry credentials is derived. */
  CREDENTIALS_KEY?: string;
  PULL_PART_SIZE?: string;
  PULL_CONCURRENCY?: string;
  PULL_STALL_MS?: string;
  PULL_RETRIES?: string;
  PUSH_CHUNK_SIZE?: string;
  /** DNS-over-HTTPS (JSON API) endpoint that registry names are resolved through before each request. */
  REGISTRY_DNS_RESOLVER?: string;
  REGISTRY_TIMEOUT_MS?: string;
};

const MiB = 1024 * 1024;

export interface PullSettings {
  /** Bytes per ranged GET and per R2 part (a multiple of 64, at least R2's 5 MiB minimum). */
  partSize: number;
  /** Ranged GETs in flight per blob; parts are buffered until their turn, so memory is about this × partSize. */
  concurrency: number;
  /** A part that receives no byte for this long is abandoned and fetched again. */
  stallMs: number;
  /** Attempts per part before the pull fails. */
  retries: number;
}

export interface PushSettings {
  /** Bytes per PATCH. */
  chunkSize: number;
}

/** A whole-number Worker var clamped to [min, max]; unset or not a number: `fallback`. */
export function intVar(raw: string | undefined, fallback: number, min: number, max: number): number {
  const n = raw === undefined || raw === "" ? Number.NaN : Number(raw);
  if (!Number.isSafeInteger(n)) return fallback;
  return Math.min(max, Math.max(min, n));
}

export function pullSettings(env: OciEnv): PullSettings {
  const part = intVar(env.PULL_PART_SIZE, 16 * MiB, 5 * MiB, 95 * MiB);
  return {
    partSize: Math.ceil(part / 64) * 64,
    concurrency: intVar(env.PULL_CONCURRENCY, 4, 1, 16),
    stallMs: intVar(env.PULL_STALL_MS, 30_000, 200, 600_000),
    retries: intVar(env.PULL_RETRIES, 6, 1, 20),
  };
}

export function pushSettings(env: OciEnv): PushSettings {
  return { chunkSize: intVar(env.PUSH_CHUNK_SIZE, 16 * MiB, 64 * 1024, 95 * MiB) };
}

export function networkSettings(env: OciEnv): NetworkSettings {
  return {
    resolverUrl: env.REGISTRY_DNS_RESOLVER || DEFAULT_DNS_RESOLVER,
    timeoutMs: intVar(env.REGISTRY_TIMEOUT_MS, 30_000, 100, 600_000),
  };
}

export const allowPrivateRegistries = (env: OciEnv) => env.ALLOW_PRIVATE_REGISTRIES === "true";
