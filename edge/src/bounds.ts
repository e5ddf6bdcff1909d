/**
 * The bound on every tenant-controlled number of an inference or create request, checked before anything is
 * scheduled: crossing one is a 400 that names the bound, and nothing is used. Each bound is a per-tenant limit
 * (`tenants.limits`, admin `PUT /admin/tenants/:t/limits`, `npm run admin -- limits`); REQUEST_LIMIT_DEFAULTS is
 * the one place their defaults live. `num_thread` and `num_gpu` are not bounded here: the runner ignores them (its
 * threads and GPU layers are runner-wide settings), as the runner's options table documents.
 */
import {
  ApiError,
  type ChatRequest,
  type EmbeddingRequest,
  type EmbedRequest,
  type GenerateRequest,
  parseKeepAlive,
} from "@corral/protocol";
import { z } from "zod";

export const REQUEST_LIMIT_DEFAULTS = {
  /** Context length per sequence; also at most the model's trained context. */
  num_ctx: 131_072,
  /** Tokens to generate (negative, Ollama's "until the context is full", is allowed). */
  num_predict: 131_072,
  num_batch: 4_096,
  top_k: 1_000,
  /**
   * UTF-8 bytes of prompt, suffix, system, template, message texts and embed inputs together. 1 MiB is more text
   * than any 128k-token context holds; tokenising it holds a runner's event loop for ~2 s on a busy CPU (issue #9
   * measured a 4 MiB prompt at ~12 s), delaying every other stream on that runner.
   */
  prompt_bytes: 1024 * 1024,
  /**
   * Bytes of one request body (JSON text: prompt, messages, base64 images, options), counted while it is read: a
   * larger body is refused before it is buffered or parsed. Room for the prompt bound and a few phone photos in
   * base64 (~4–6 MB each); 16 MiB refused three of them. Well under Cloudflare's 100 MB request limit.
   */
  body_bytes: 32 * 1024 * 1024,
  /** Images in one request (generate's, or all messages' together). */
  images: 16,
  /** Inputs in one embed batch. */
  embed_inputs: 1_024,
  /** Longest keep_alive, in seconds; "forever" (negative) is held to it (clients send -1 routinely). */
  keep_alive_s: 24 * 3600,
  /** `files` plus `adapters` entries in one create. */
  create_files: 256,
  /** Jobs of each kind one tenant may run at once (edge/src/job-permits.ts). */
  concurrent_pulls: 3,
  concurrent_pushes: 3,
  concurrent_creates: 4,
  concurrent_quantize: 1,
} as const;

export type RequestLimitName = keyof typeof REQUEST_LIMIT_DEFAULTS;
export type RequestLimits = Record<RequestLimitName, number>;

const LIMIT_NAMES = Object.keys(REQUEST_LIMIT_DEFAULTS) as RequestLimitName[];

/** An operator's change: a positive whole number, or null for the default again. */
export const RequestLimitsPatchSchema = z
  .object(
    Object.fromEntries(
      LIMIT_NAMES.map((name) => [name, z.number().int().positive().max(Number.MAX_SAFE_INTEGER).nullable().optional()]),
    ) as Record<RequestLimitName, z.ZodOptional<z.ZodNullable<z.ZodNumber>>>,
  )
  .strict();
export type RequestLimitsPatch = z.infer<typeof RequestLimitsPatchSchema>;

/** A tenant's stored overrides (JSON, NULL for none) merged over the defaults; unreadable entries are ignored. */
export function effectiveLimits(stored: string | null): RequestLimits {
  const limits: RequestLimits = { ...REQUEST_LIMIT_DEFAULTS };
  if (!stored) return limits;
  let overrides: unknown;
  try {
    overrides = JSON.parse(stored);
  } catch {
    return limits;
  }
  const parsed = RequestLimitsPatchSchema.safeParse(overrides);
  if (!parsed.success) return limits;
  for (const name of LIMIT_NAMES) {
    const value = parsed.data[name];
    if (typeof value === "number") limits[name] = value;
  }
  return limits;
}

/** Stored overrides after a patch: only values that differ from the defaults are kept. */
export function patchLimits(stored: string | null, patch: RequestLimitsPatch): string | null {
  const next = effectiveLimits(stored);
  for (const name of LIMIT_NAMES) {
    const value = patch[name];
    if (value !== undefined) next[name] = value ?? REQUEST_LIMIT_DEFAULTS[name];
  }
  const overrides = Object.fromEntries(
    LIMIT_NAMES.filter((n) => next[n] !== REQUEST_LIMIT_DEFAULTS[n]).map((n) => [n, next[n]]),
  );
  return Object.keys(overrides).length > 0 ? JSON.stringify(overrides) : null;
}

const crossed = (what: string, limit: number, unit = "") =>
  new ApiError(400, `${what} exceeds this tenant's limit of ${limit}${unit}`);

/** A body past `body_bytes`: its size where the client declared it (Content-Length), else only that it is larger. */
export const bodyTooLarge = (declared: number | undefined, limit: number) =>
  crossed(declared === undefined ? "request body" : `request body (${declared} bytes)`, limit, " bytes");

export type InferenceRequest = GenerateRequest | ChatRequest | EmbedRequest | EmbeddingRequest;

const encoder = new TextEncoder();
const utf8Bytes = (texts: (string | undefined)[]) =>
  texts.reduce((n, text) => n + (text ? encoder.encode(text).length : 0), 0);

/** Prompt-side text and images of a request, whatever its endpoint. */
function requestTexts(request: InferenceRequest): { texts: (string | undefined)[]; images: number; inputs: number } {
  if ("messages" in request) {
    return {
      texts: request.messages.flatMap((m) => [m.content, m.thinking]),
      images: request.messages.reduce((n, m) => n + (m.images?.length ?? 0), 0),
      inputs: 0,
    };
  }
  if ("input" in request) return { texts: request.input, images: 0, inputs: request.input.length };
  const generate = request as GenerateRequest;
  return {
    texts: [generate.prompt, generate.suffix, generate.system, generate.template],
    images: generate.images?.length ?? 0,
    inputs: 0,
  };
}

/**
 * Checks an inference request against the tenant's limits and the model: `options` are the model's defaults with
 * the request's options over them (what the runner will use); `trainedContext` is the GGUF's, when known. Returns
 * the keep_alive to send instead of the client's, when it was "forever": as long as the tenant may keep a model.
 */
export function checkInferenceBounds(
  request: InferenceRequest,
  options: Record<string, unknown>,
  limits: RequestLimits,
  trainedContext: number | undefined,
): { keepAlive?: string } {
  const { texts, images, inputs } = requestTexts(request);
  const bytes = utf8Bytes(texts);
  if (bytes > limits.prompt_bytes) throw crossed(`prompt size (${bytes} bytes)`, limits.prompt_bytes, " bytes");
  if (images > limits.images) throw crossed(`${images} images`, limits.images, " images per request");
  if (inputs > limits.embed_inputs) throw crossed(`${inputs} embed inputs`, limits.embed_inputs, " inputs per request");
  const keepAlive = boundKeepAlive(request.keep_alive, limits.keep_alive_s);

  const numCtx = wholeOption(options, "num_ctx");
  if (numCtx !== undefined) {
    if (numCtx > limits.num_ctx) throw crossed(`num_ctx ${numCtx}`, limits.num_ctx);
    if (trainedContext && numCtx > trainedContext) {
      throw new ApiError(400, `num_ctx ${numCtx} exceeds the model's trained context length of ${trainedContext}`);
    }
  }
  const contextBound = Math.min(limits.num_ctx, trainedContext || limits.num_ctx);
  const bounded: [string, number][] = [
    ["num_predict", limits.num_predict],
    ["num_batch", limits.num_batch],
    ["top_k", limits.top_k],
    ["num_keep", contextBound],
    ["repeat_last_n", contextBound],
  ];
  for (const [name, limit] of bounded) {
    const value = wholeOption(options, name);
    if (value !== undefined && value > limit) throw crossed(`${name} ${value}`, limit);
  }
  return keepAlive === undefined ? {} : { keepAlive };
}

function wholeOption(options: Record<string, unknown>, name: string): number | undefined {
  const value = options[name];
  return typeof value === "number" ? value : undefined;
}

/**
 * An explicit keep_alive over the limit is a 400 naming it. "Forever" (any negative value, Ollama's idiom that
 * clients and the CLI send as a matter of course) is held to the limit instead of refused: the longest this tenant
 * may keep a model.
 */
function boundKeepAlive(value: unknown, limitSeconds: number): string | undefined {
  const millis = parseKeepAlive(value);
  if (millis === Number.POSITIVE_INFINITY) return `${limitSeconds}s`;
  if (millis === null || millis <= limitSeconds * 1000) return undefined;
  throw crossed(`keep_alive ${millis / 1000}s`, limitSeconds, "s");
}

/** `files` and `adapters` entries of a create. */
export function checkCreateBounds(
  request: { files?: Record<string, string>; adapters?: Record<string, string> },
  limits: RequestLimits,
): void {
  const entries = Object.keys(request.files ?? {}).length + Object.keys(request.adapters ?? {}).length;
  if (entries > limits.create_files) throw crossed(`${entries} files`, limits.create_files, " files per create");
}
