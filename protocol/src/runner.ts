/**
 * The edge ↔ gpu-runner contract. The edge resolves names, manifests and parameters; the runner only ever sees
 * digests and resolved values, never a tenant's namespace or a file path.
 *
 * Runner HTTP API (all requests carry `Authorization: Bearer <RUNNER_SECRET>`):
 *   POST /v1/generate | /v1/chat | /v1/embed | /v1/embeddings   body: RunnerInferenceRequest → Ollama NDJSON / JSON
 *   GET  /v1/ps                                                  → RunnerStatus
 *   GET  /metrics                                                → Prometheus text
 * Edge endpoints for runners (same secret):
 *   POST /internal/runners/heartbeat   body: RunnerStatus → { ok: true, draining: boolean }
 *   GET  /internal/blobs/:digest       → blob bytes (Range supported); local stack's blob path
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
