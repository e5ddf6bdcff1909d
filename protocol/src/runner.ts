/**
 * The edge ↔ gpu-runner contract. The edge resolves names, manifests and parameters; the runner only ever sees
 * digests and resolved values, never a tenant's namespace or a file path.
 *
 * Runner HTTP API (all requests carry `Authorization: Bearer <RUNNER_SECRET>`):
 *   POST /v1/generate | /v1/chat | /v1/embed | /v1/embeddings   body: RunnerInferenceRequest → Ollama NDJSON / JSON
 *   GET  /v1/ps                                                  → RunnerStatus
 *   POST /v1/quantize                     body: QuantizeJobRequest → NDJSON JobEvent lines
 *   POST /v1/convert                      body: ConvertJobRequest → NDJSON JobEvent lines
 *   GET  /metrics                                                → Prometheus text
 * Edge endpoints for runners (same secret):
 *   POST /internal/runners/heartbeat   body: RunnerStatus → { ok: true, draining: boolean }
 *   GET  /internal/blobs/:digest       → blob bytes (Range supported); local stack's blob path
 *   PUT  /internal/blobs/:digest       body: blob bytes (Content-Length) → 201/200; the sha256 is checked while
 *                                      storing (400 `digest mismatch`, nothing stored). Local stack's upload path.
 *   POST /internal/blobs/:digest/intent  body: BlobIntent → 201/200, before a runner writes a blob to the bucket
 *                                      over S3 itself (production): the edge records it so the GC can collect it.
 */
import { z } from "zod";
import { firstIssue } from "./schema-helpers";
import { isValidRelativePath } from "./schemas-models";

export const RUNNER_HEADER_REQUEST_ID = "x-corral-request-id";

/** A model as the runner needs it: everything resolved from the tenant's manifest. */
export const ResolvedModelSchema = z.object({
  /** The name the client used; echoed in every response chunk's `model` field. */
  name: z.string(),
  /** The manifest digest (what /api/tags shows). */
  digest: z.string(),
  /** Digest and size of the GGUF weights layer. */
  model_blob: z.string(),
  model_size: z.number().int().nonnegative(),
  /** LoRA adapter layers, in order. */
  adapters: z.array(z.object({ digest: z.string(), size: z.number().int().nonnegative() })).default([]),
  /** The vision projector layer (an mmproj GGUF), for models that take images. */
  projector: z.object({ digest: z.string(), size: z.number().int().nonnegative() }).optional(),
  /** Template layer (Go text/template). Absent → the GGUF's own tokenizer.chat_template. */
  template: z.string().optional(),
  system: z.string().optional(),
  /** Model default parameters (the params layer); request options override them. */
  params: z.record(z.unknown()).default({}),
  /** Messages layer: prepended to chat history. */
  messages: z.array(z.record(z.unknown())).default([]),
});
export type ResolvedModel = z.infer<typeof ResolvedModelSchema>;

export const RunnerInferenceRequestSchema = z.object({
  request_id: z.string().min(1).max(128),
  model: ResolvedModelSchema,
  /** The client's validated request body (GenerateRequest, ChatRequest, EmbedRequest or EmbeddingRequest). */
  request: z.record(z.unknown()),
  /**
   * Set by Ollama-compatible endpoints that relax `think` (Anthropic's /v1/messages, as Ollama's middleware does):
   * asking a model without thinking to think drops the request's `think` instead of refusing it.
   */
  relax_thinking: z.boolean().optional(),
  /** The edge's tenant id: the runner unloads by the fair-share rule (fair-share.ts) and reports it per model. */
  tenant: z.string().min(1).max(128).optional(),
});
export type RunnerInferenceRequest = z.infer<typeof RunnerInferenceRequestSchema>;

export const LoadedModelSchema = z.object({
  /** GGUF blob digest: the identity of loaded weights (shared between tenants whose models use the same blob). */
  model_blob: z.string(),
  size: z.number().int().nonnegative(),
  size_vram: z.number().int().nonnegative(),
  context_length: z.number().int().nonnegative(),
  /** ISO time; far future for keep_alive < 0. */
  expires_at: z.string(),
  busy_sequences: z.number().int().nonnegative(),
  sequences: z.number().int().nonnegative(),
  /**
   * The tenant whose request used it last (RunnerInferenceRequest.tenant), for the fair-share rule of unloading
   * (fair-share.ts); the scheduler learns it back from here after a restart. Never shown to tenants.
   */
  tenant: z.string().min(1).max(128).optional(),
});
export type LoadedModel = z.infer<typeof LoadedModelSchema>;

export const RunnerStatusSchema = z.object({
  id: z.string().min(1).max(128),
  url: z.string().url(),
  slots: z.number().int().nonnegative(),
  busy_slots: z.number().int().nonnegative(),
  memory_total: z.number().int().nonnegative(),
  memory_free: z.number().int().nonnegative(),
  loaded: z.array(LoadedModelSchema),
  draining: z.boolean().default(false),
});
export type RunnerStatus = z.infer<typeof RunnerStatusSchema>;

/** The runner's whole-number counters: a fraction here is a rounding slip on the runner, not a reason to drop it. */
const RUNNER_COUNTERS = ["slots", "busy_slots", "memory_total", "memory_free"] as const;

const RunnerEnvelopeSchema = RunnerStatusSchema.extend({
  ...Object.fromEntries(RUNNER_COUNTERS.map((field) => [field, z.number().finite().nonnegative()])),
  loaded: z.array(z.unknown()).max(1024),
});

export type ReadRunnerStatus =
  | {
      ok: true;
      status: RunnerStatus /** What was repaired or dropped, one line each, for logs and metrics. */;
      dropped: string[];
    }
  | { ok: false; error: string };

/**
 * A heartbeat as the edge reads it and as the runner checks it before sending: one bad entry never costs the whole
 * heartbeat (a runner whose heartbeats are refused is evicted, taking every tenant's work with it). Only an
 * unusable envelope (no id or url, counters that are not numbers) is an error; a fractional counter is rounded
 * down and a `loaded` entry that fails `LoadedModelSchema` is dropped, each reported in `dropped`.
 */
export function readRunnerStatus(value: unknown): ReadRunnerStatus {
  const envelope = RunnerEnvelopeSchema.safeParse(value);
  if (!envelope.success) {
    return { ok: false, error: `invalid heartbeat: ${firstIssue(envelope.error)}` };
  }
  const dropped: string[] = [];
  const counters = {} as Record<(typeof RUNNER_COUNTERS)[number], number>;
  for (const field of RUNNER_COUNTERS) {
    const raw = envelope.data[field] as number;
    counters[field] = Math.floor(raw);
    if (!Number.isInteger(raw)) dropped.push(`${field}: ${raw} is not a whole number, rounded down`);
  }
  const loaded: LoadedModel[] = [];
  envelope.data.loaded.forEach((entry, index) => {
    const parsed = LoadedModelSchema.safeParse(entry);
    if (parsed.success) {
      loaded.push(parsed.data);
      return;
    }
    dropped.push(`loaded.${index}.${firstIssue(parsed.error)}, entry dropped`);
  });
  return { ok: true, status: { ...envelope.data, ...counters, loaded }, dropped };
}

/** File types `quantize` accepts (Ollama's ParseFileType; `Q4_K` is read as Q4_K_M), with llama.cpp's ftype ids. */
export const QUANTIZE_FILE_TYPES = { F32: 0, F16: 1, Q8_0: 7, Q4_K_S: 14, Q4_K_M: 15, BF16: 32 } as const;
export type QuantizeFileType = keyof typeof QUANTIZE_FILE_TYPES;

/**
 * A quantize job: the runner fetches `source` into its cache, rewrites it with llama.cpp's quantizer, stores the
 * result in the blob store under its sha256 and reports it. The runner never learns whose model it is.
 */
export const QuantizeJobRequestSchema = z.object({
  request_id: z.string().min(1).max(128),
  source: z.object({ digest: z.string(), size: z.number().int().nonnegative() }),
  file_type: z.enum(Object.keys(QUANTIZE_FILE_TYPES) as [QuantizeFileType, ...QuantizeFileType[]]),
});
export type QuantizeJobRequest = z.infer<typeof QuantizeJobRequestSchema>;

/**
 * A convert job: the runner fetches a Hugging Face checkpoint's files (named as the client named them; the names
 * only tell the files apart, none reaches the file system), converts them to one GGUF, stores it and reports it.
 */
export const ConvertJobRequestSchema = z.object({
  request_id: z.string().min(1).max(128),
  files: z
    .array(
      z.object({
        name: z
          .string()
          .max(1024)
          .refine((name) => name !== "." && isValidRelativePath(name), "file path must be relative"),
        digest: z.string(),
        size: z.number().int().nonnegative(),
      }),
    )
    .min(1)
    .max(1024),
  /** Present for a LoRA adapter: the base model it applies to (protocol/checkpoint-lora.ts). */
  adapter_base: z
    .object({
      architecture: z.string().min(1).max(64),
      layers: z.number().int().min(1).max(1024),
      heads: z.number().int().min(1).max(1024),
      kv_heads: z.number().int().min(1).max(1024),
      /** The base weights the adapter targets, with their ggml dims ([in, out]). */
      tensors: z
        .array(
          z.object({
            name: z.string().max(256),
            dims: z
              .array(
                z
                  .number()
                  .int()
                  .min(1)
                  .max(1 << 24),
              )
              .length(2),
          }),
        )
        .max(8192),
    })
    .optional(),
});
export type ConvertJobRequest = z.infer<typeof ConvertJobRequestSchema>;
export type AdapterBaseWire = NonNullable<ConvertJobRequest["adapter_base"]>;

/**
 * One NDJSON line of a runner job (quantize, convert). `progress`: `phase` "fetch" while the source blobs download,
 * in bytes; "quantize" or "convert" while tensors are rewritten, in tensors; "upload" while the result is stored, in
 * bytes. The stream ends with exactly one `done` (the stored blob) or one `error` line.
 */
export const JobEventSchema = z.discriminatedUnion("event", [
  z.object({
    event: z.literal("progress"),
    phase: z.enum(["fetch", "quantize", "convert", "upload"]),
    completed: z.number().nonnegative(),
    total: z.number().nonnegative(),
  }),
  z.object({ event: z.literal("done"), digest: z.string(), size: z.number().int().nonnegative() }),
  z.object({ event: z.literal("error"), error: z.string(), status: z.number().int().optional() }),
]);
export type JobEvent = z.infer<typeof JobEventSchema>;

/** A runner announcing a blob it is about to write to the bucket itself. */
export const BlobIntentSchema = z.object({ size: z.number().int().nonnegative() });
export type BlobIntent = z.infer<typeof BlobIntentSchema>;
