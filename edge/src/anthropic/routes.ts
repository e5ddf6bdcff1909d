/**
 * Anthropic's Messages API beside Ollama's, as Ollama serves it at /v1/messages (anthropic/, middleware/
 * anthropic.go): requests are translated to Ollama chat requests and run through the same inference pipeline as
 * /api/chat (validation, quotas, scheduling, relay, usage metering); answers are translated back, streams as
 * Anthropic's server-sent events. Keys come in `x-api-key` (or Bearer), and every error here, authentication
 * included, takes Anthropic's `{"type": "error", "error": {...}}` body.
 */
import { ApiError, parseJsonBody } from "@corral/protocol";
import { Hono } from "hono";
import { requireTenantApiKey } from "../auth";
import { readBody } from "../body";
import { getModel } from "../db/models";
import type { AppBindings } from "../env";
import { anthropicError, clientError, inDialect } from "../errors";
import { runOllama } from "../openai/pipeline";
import { randomId } from "../openai/translate-response";
import { SSE_HEADERS, sseFromNdjson } from "../openai/translate-stream";
import { modelNotFound, tenantModelName } from "../store/names";
import { estimateInputTokens, translateMessagesRequest } from "./translate-request";
import { asObject, toMessagesResponse } from "./translate-response";
import { MessagesStreamTranslator } from "./translate-stream";

export const anthropicRoutes = new Hono<AppBindings>();

anthropicRoutes.onError((err) => anthropicError(clientError(err)));
anthropicRoutes.use(requireTenantApiKey);

anthropicRoutes.post("/", async (c) => {
  const request = translateMessagesRequest(await readBody(c));
  const id = randomId("msg_");
  // As Ollama's Anthropic middleware: clients send `thinking` whatever the model; one that cannot think just answers.
  const res = await runOllama(c, "chat", request.ollama, { relaxThinking: true });
  if (!res.ok) return inDialect(anthropicError, res);
  if (request.ollama.stream) {
    if (!res.body) throw new ApiError(502, "inference pipeline answered without a body");
    const translator = new MessagesStreamTranslator(id, request.model, request.estimatedInputTokens);
    return new Response(sseFromNdjson(res.body, translator), { headers: SSE_HEADERS });
  }
  const json = asObject(parseJsonBody(await res.text()));
  if (typeof json.error === "string") throw new ApiError(500, json.error);
  return c.json(toMessagesResponse(id, request.model, json));
});

/** Ollama's estimate, for a model the tenant has (another tenant's is answered like a missing one). */
anthropicRoutes.post("/count_tokens", async (c) => {
  const body = await readBody(c);
  const inputTokens = estimateInputTokens(body);
  const name = String(asObject(body).model);
  const parsed = tenantModelName(name);
  const row = parsed ? await getModel(c.env.DB, c.get("tenantId"), parsed.key) : null;
  if (!row) throw modelNotFound(name);
  return c.json({ input_tokens: inputTokens });
});

anthropicRoutes.all("*", (c) => {
  throw new ApiError(404, `unknown endpoint: ${c.req.method} ${c.req.path}`);
});
