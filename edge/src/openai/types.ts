/**
 * The OpenAI wire shapes corral answers with, named after Ollama's openai/openai.go (the reference for what an
 * Ollama-compatible server puts in them). Requests are read field by field in translate-request.ts.
 */

export interface OpenAIErrorObject {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

export interface OpenAIErrorBody {
  error: OpenAIErrorObject;
}

export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Present when part of the prompt came from the runner's prompt cache. */
  prompt_tokens_details?: { cached_tokens: number };
}

export interface OpenAIToolCall {
  id: string;
  index: number;
  type: "function";
  function: { name: string; arguments: string };
}

export interface OpenAIMessage {
  role: string;
  content: string;
  reasoning?: string;
  tool_calls?: OpenAIToolCall[];
}

export interface ChatLogprobs {
  content: unknown[];
}

export interface ChatChoice {
  index: number;
  message: OpenAIMessage;
  finish_reason: string | null;
  logprobs?: ChatLogprobs;
}

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  system_fingerprint: string;
  choices: ChatChoice[];
  usage: OpenAIUsage;
}

export interface ChatChunkChoice {
  index: number;
  delta: OpenAIMessage;
  finish_reason: string | null;
  logprobs?: ChatLogprobs;
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  system_fingerprint: string;
  choices: ChatChunkChoice[];
  usage?: OpenAIUsage | null;
}

/** The legacy completions logprobs shape (parallel arrays). */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

export interface CompletionChoice {
  text: string;
  index: number;
  finish_reason: string | null;
  logprobs?: CompletionLogprobs | null;
}

export interface Completion {
  id: string;
  object: "text_completion";
  created: number;
  model: string;
  system_fingerprint: string;
  choices: CompletionChoice[];
  usage?: OpenAIUsage | null;
}

export interface OpenAIEmbedding {
  object: "embedding";
  embedding: number[] | string;
  index: number;
}

export interface EmbeddingList {
  object: "list";
  data: OpenAIEmbedding[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

export interface OpenAIModel {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}

export interface ModelList {
  object: "list";
  data: OpenAIModel[];
}
