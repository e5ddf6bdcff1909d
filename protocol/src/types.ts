/**
 * Ollama wire types, named after ollama's api/types.go, fields in its snake_case JSON spelling.
 * Request types are what the zod schemas yield (one source of truth); responses are declared here.
 * Durations in responses are nanoseconds, timestamps RFC 3339 strings, as on Ollama's wire.
 */
import type { Message, ToolCall } from "./schema-fields";

export type { Options } from "./options";
export type { Message, Tool, ToolCall } from "./schema-fields";
export type { ChatRequest, EmbeddingRequest, EmbedRequest, GenerateRequest, ThinkLevel } from "./schemas";
export type {
  CopyRequest,
  CreateRequest,
  DeleteRequest,
  PullRequest,
  PushRequest,
  ShowRequest,
} from "./schemas-models";

/** Timing and token counts carried by the final chunk of generate/chat (omitted when zero, as Go does). */
export interface Metrics {
  total_duration?: number;
  load_duration?: number;
  prompt_eval_count?: number;
  /**
   * corral's addition: how many of prompt_eval_count came from the prompt cache (a prefix the sequence held
   * already) rather than being evaluated. Omitted when zero. Metered as its own usage column.
   */
  prompt_cached_count?: number;
  prompt_eval_duration?: number;
  eval_count?: number;
  eval_duration?: number;
}

/** Why generation ended: "stop" (EOS or a stop sequence), "length" (num_predict), "load" / "unload" (empty requests). */
export type DoneReason = "stop" | "length" | "load" | "unload" | (string & {});

export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes?: number[];
}

export interface Logprob extends TokenLogprob {
  top_logprobs?: TokenLogprob[];
}

export interface GenerateResponse extends Metrics {
  model: string;
  created_at: string;
  response: string;
  thinking?: string;
  done: boolean;
  done_reason?: DoneReason;
  context?: number[];
  tool_calls?: ToolCall[];
  logprobs?: Logprob[];
}

export interface ChatResponse extends Metrics {
  model: string;
  created_at: string;
  message: Message;
  done: boolean;
  done_reason?: DoneReason;
  logprobs?: Logprob[];
}

export interface EmbedResponse {
  model: string;
  embeddings: number[][];
  total_duration?: number;
  load_duration?: number;
  prompt_eval_count?: number;
}

/** Response of the legacy `/api/embeddings`. */
export interface EmbeddingResponse {
  embedding: number[];
}

export type Capability = "completion" | "tools" | "insert" | "vision" | "embedding" | "thinking" | "image" | "audio";

export interface ModelDetails {
  parent_model: string;
  format: string;
  family: string;
  families: string[] | null;
  parameter_size: string;
  quantization_level: string;
  context_length?: number;
  embedding_length?: number;
}

export interface Tensor {
  name: string;
  type: string;
  shape: number[];
}

export interface ShowResponse {
  license?: string;
  modelfile?: string;
  parameters?: string;
  template?: string;
  system?: string;
  renderer?: string;
  parser?: string;
  details?: ModelDetails;
  messages?: Message[];
  model_info: Record<string, unknown> | null;
  projector_info?: Record<string, unknown>;
  tensors?: Tensor[];
  capabilities?: Capability[];
  modified_at?: string;
  requires?: string;
}

/** One `/api/tags` entry. `name` and `model` both hold the shortest display name (`llama3.2:latest`). */
export interface ListModelResponse {
  name: string;
  model: string;
  modified_at: string;
  size: number;
  /** Hex sha256 of the manifest, without the `sha256:` prefix (as Ollama shows it). */
  digest: string;
  details: ModelDetails;
  capabilities?: Capability[];
}

export interface ListResponse {
  models: ListModelResponse[];
}

/** One `/api/ps` entry. */
export interface ProcessModelResponse {
  name: string;
  model: string;
  size: number;
  digest: string;
  details: ModelDetails;
  expires_at: string;
  size_vram: number;
  context_length?: number;
}

export interface ProcessResponse {
  models: ProcessModelResponse[];
}

/** A line of the pull/push/create progress streams (and their single non-streamed reply). */
export interface ProgressResponse {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

export interface VersionResponse {
  version: string;
}

/** Every error body, streamed or not: `{"error": "..."}`. */
export interface ErrorResponse {
  error: string;
}
