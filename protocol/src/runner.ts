/**
 * The edge ↔ gpu-runner contract. The edge resolves names, manifests and parameters; the runner only ever sees
 * digests and resolved values, never a tenant's namespace or a file path.
 *
 * Runner HTTP API (all requests carry `Authorization: Bearer <RUNNER_SECRET>`):
 *   POST /v1/generate | /v1/chat | /v1/embed | /v1/embeddings   body: RunnerInferenceRequest → Ollama NDJSON / JSON
 *   GET  /v1/ps                                                  → RunnerStatus
 *   POST /v1/quantize                     body: QuantizeJobRequest → NDJSON QuantizeJobEvent lines
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
 * One NDJSON line of a quantize job. `progress`: tensors done of total while quantizing (`phase` "fetch" while the
 * source blob downloads, in bytes, "quantize" while tensors are rewritten, "upload" while the result is stored, in
 * bytes). The stream ends with exactly one `done` (the stored blob) or one `error` line.
 */
export const QuantizeJobEventSchema = z.discriminatedUnion("event", [
  z.object({
    event: z.literal("progress"),
    phase: z.enum(["fetch", "quantize", "upload"]),
    completed: z.number().nonnegative(),
    total: z.number().nonnegative(),
  }),
  z.object({ event: z.literal("done"), digest: z.string(), size: z.number().int().nonnegative() }),
  z.object({ event: z.literal("error"), error: z.string(), status: z.number().int().optional() }),
]);
export type QuantizeJobEvent = z.infer<typeof QuantizeJobEventSchema>;

/** A runner announcing a blob it is about to write to the bucket itself. */
export const BlobIntentSchema = z.object({ size: z.number().int().nonnegative() });
export type BlobIntent = z.infer<typeof BlobIntentSchema>;
