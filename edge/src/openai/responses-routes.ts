/**
 * OpenAI's Responses API, stateless as Ollama serves it at /v1/responses: the request is translated to an Ollama
 * chat request and run through the same inference pipeline as /api/chat (validation, quotas, scheduling, relay,
 * usage metering); the answer comes back as one response object or as the Responses event stream.
 */
import { ApiError, parseJsonBody } from "@corral/protocol";
import { Hono } from "hono";
import { readBody } from "../body";
import type { AppBindings } from "../env";
import { clientError, inDialect, openAIError } from "../errors";
import { runOllama } from "./pipeline";
import { translateResponsesRequest } from "./responses-request";
import { type ResponseIds, toResponse } from "./responses-response";
import { ResponsesStreamTranslator } from "./responses-stream";
import { randomId } from "./translate-response";
import { SSE_HEADERS, sseFromNdjson } from "./translate-stream";

export const responsesRoutes = new Hono<AppBindings>();

responsesRoutes.onError((err) => openAIError(clientError(err)));

responsesRoutes.post("/", async (c) => {
  const { ollama, echo } = translateResponsesRequest(await readBody(c));
  const ids: ResponseIds = {
    response: randomId("resp_"),
    message: randomId("msg_"),
    createdAt: Math.floor(Date.now() / 1000),
  };
  const res = await runOllama(c, "chat", ollama);
  if (!res.ok) return inDialect(openAIError, res);
  if (ollama.stream) {
    if (!res.body) throw new ApiError(502, "inference pipeline answered without a body");
    return new Response(sseFromNdjson(res.body, new ResponsesStreamTranslator(ids, echo)), { headers: SSE_HEADERS });
  }
  const json = parseJsonBody(await res.text()) as Record<string, unknown>;
  if (typeof json.error === "string") throw new ApiError(500, json.error);
  return c.json(toResponse(ids, echo, json));
});
