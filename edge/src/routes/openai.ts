/**
 * The OpenAI-compatible API beside Ollama's, as Ollama itself serves it under /v1 (openai/openai.go,
 * middleware/openai.go): requests are translated to Ollama requests and run through the same inference pipeline
 * as /api/chat, /api/generate and /api/embed; answers are translated back, streams as server-sent events.
 * Every error under /v1 takes OpenAI's `{"error": {...}}` body with the status Ollama's answer had.
 */
import { ApiError, RUNNER_HEADER_REQUEST_ID } from "@corral/protocol";
import type { ChatResponse, EmbedResponse, GenerateResponse } from "@corral/protocol/types";
import { type Context, Hono } from "hono";
import { readBody } from "../body";
import { getModel, listModels } from "../db/models";
import type { AppBindings } from "../env";
import { openAIError, readOllamaError, toErrorResponse } from "../errors";
import { runOllama } from "../openai/pipeline";
import { OpenAIRequestError } from "../openai/request-error";
import {
  translateChatRequest,
  translateCompletionRequest,
  translateEmbeddingRequest,
} from "../openai/translate-request";
import {
  randomId,
  toChatCompletion,
  toCompletion,
  toEmbeddingList,
  toModel,
  toModelList,
} from "../openai/translate-response";
import {
  ChatStreamTranslator,
  CompletionStreamTranslator,
  SSE_HEADERS,
  type StreamContext,
  type StreamTranslator,
  sseFromNdjson,
} from "../openai/translate-stream";
import { tenantModelName } from "../store/names";

type Ctx = Context<AppBindings>;

/**
 * An Ollama single-object answer: its JSON, or an error thrown for the OpenAI error handler (an `{"error"}` body
 * with status 200 is a failure of the server's, as Ollama's middleware treats it).
 */
async function ollamaJson<T extends object>(res: Response): Promise<T> {
  const text = await res.text();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`inference pipeline answered with a body that is not JSON: ${text.slice(0, 80)}`);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("inference answer is not an object");
  const json = value as Record<string, unknown>;
  if (typeof json.error === "string") throw new ApiError(500, json.error);
  return json as T;
}

/** The request's id (its usage row's) as the Ollama answer carries it: billing audits match answers to rows. */
const requestIdHeader = (res: Response): Record<string, string> => {
  const id = res.headers.get(RUNNER_HEADER_REQUEST_ID);
  return id ? { [RUNNER_HEADER_REQUEST_ID]: id } : {};
};

function streamed(res: Response, translator: StreamTranslator): Response {
  if (!res.body) throw new ApiError(502, "inference pipeline answered without a body");
  return new Response(sseFromNdjson(res.body, translator), { headers: { ...SSE_HEADERS, ...requestIdHeader(res) } });
}

/** Chat and completions: one OpenAI object, or the Ollama stream as server-sent events. */
async function generation<T extends ChatResponse | GenerateResponse>(
  c: Ctx,
  endpoint: "chat" | "generate",
  body: { stream: boolean },
  makeTranslator: () => StreamTranslator,
  toObject: (answer: T) => object,
): Promise<Response> {
  const res = await runOllama(c, endpoint, body);
  if (!res.ok) return openAIError(await readOllamaError(res));
  if (body.stream) return streamed(res, makeTranslator());
  return c.json(toObject(await ollamaJson<T>(res)), 200, requestIdHeader(res));
}

export const openaiRoutes = new Hono<AppBindings>();

openaiRoutes.onError(toErrorResponse);

openaiRoutes.post("/chat/completions", async (c) => {
  const request = translateChatRequest(await readBody(c));
  const id = randomId("chatcmpl-");
  const ctx: StreamContext = { id, created: Math.floor(Date.now() / 1000), includeUsage: request.includeUsage };
  return generation(
    c,
    "chat",
    request.ollama,
    () => new ChatStreamTranslator(ctx),
    (answer: ChatResponse) => toChatCompletion(id, answer),
  );
});

openaiRoutes.post("/completions", async (c) => {
  const request = translateCompletionRequest(await readBody(c));
  const id = randomId("cmpl-");
  const ctx: StreamContext = { id, created: Math.floor(Date.now() / 1000), includeUsage: request.includeUsage };
  return generation(
    c,
    "generate",
    request.ollama,
    () => new CompletionStreamTranslator(ctx),
    (answer: GenerateResponse) => toCompletion(id, answer),
  );
});

openaiRoutes.post("/embeddings", async (c) => {
  const { ollama, encodingFormat } = translateEmbeddingRequest(await readBody(c));
  const res = await runOllama(c, "embed", ollama);
  if (!res.ok) return openAIError(await readOllamaError(res));
  return c.json(
    toEmbeddingList(ollama.model, await ollamaJson<EmbedResponse>(res), encodingFormat),
    200,
    requestIdHeader(res),
  );
});

openaiRoutes.get("/models", async (c) => {
  const rows = await listModels(c.env.DB, c.get("tenantId"));
  return c.json(toModelList(rows));
});

// Names may hold `/` (`namespace/model`, `host/namespace/model`), so the parameter takes the rest of the path.
openaiRoutes.get("/models/:model{.+}", async (c) => {
  const name = c.req.param("model");
  const parsed = tenantModelName(name);
  const row = parsed ? await getModel(c.env.DB, c.get("tenantId"), parsed.key) : null;
  // Ollama's show text; another tenant's model is answered exactly like a missing one.
  if (!row) throw new OpenAIRequestError(`model '${name}' not found`, "model", 404);
  return c.json(toModel(name, row.modified_at));
});

openaiRoutes.all("*", (c) => {
  throw new ApiError(404, `unknown endpoint: ${c.req.method} ${c.req.path}`);
});
