/**
 * The one inference pipeline, reached from the OpenAI routes: an Ollama request body goes through exactly the
 * handler `/api/chat`, `/api/generate` and `/api/embed` use (validation, quotas, model resolution, scheduling,
 * retries, relay, usage metering), and its Ollama answer comes back unchanged (NDJSON or one JSON object, Ollama
 * error bodies included) for the caller to translate.
 *
 * The Ollama handler reads its body from a request, so the body is handed over as an internal Request dispatched
 * on a small private router. The tenant was authenticated once by the /v1 middleware; its identity travels beside
 * the internal Request in a WeakMap, never in a header, so nothing a client sends can claim an identity here.
 */
import { ApiError } from "@corral/protocol";
import { type Context, Hono } from "hono";
import type { AppBindings, PipelineVars, TenantVars } from "../env";
import { toErrorResponse } from "../errors";
import { relayInference } from "../relay/relay";

export type OllamaEndpoint = "chat" | "generate" | "embed";

const identities = new WeakMap<Request, TenantVars & PipelineVars>();

const ollamaRoutes = new Hono<AppBindings>();
ollamaRoutes.onError(toErrorResponse);
ollamaRoutes.use(async (c, next) => {
  const identity = identities.get(c.req.raw);
  if (!identity) throw new ApiError(401, "unauthorized");
  c.set("tenantId", identity.tenantId);
  c.set("keyId", identity.keyId);
  c.set("quotas", identity.quotas);
  c.set("limits", identity.limits);
  if (identity.relaxThinking) c.set("relaxThinking", true);
  await next();
});
ollamaRoutes.post("/chat", (c) => relayInference(c, "chat"));
ollamaRoutes.post("/generate", (c) => relayInference(c, "generate"));
ollamaRoutes.post("/embed", (c) => relayInference(c, "embed"));

function executionContextOf(c: Context<AppBindings>) {
  try {
    return c.executionCtx;
  } catch {
    // Hono throws when the runtime gave none (only in some test harnesses).
    return undefined;
  }
}

/** Runs `body` through the Ollama handler of `endpoint` for the tenant of `c`; resolves to its Ollama response. */
export async function runOllama(
  c: Context<AppBindings>,
  endpoint: OllamaEndpoint,
  body: unknown,
  settings: PipelineVars = {},
): Promise<Response> {
  const request = new Request(`http://ollama.internal/${endpoint}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    // The client going away must abort the upstream work, as it does on the Ollama routes.
    signal: c.req.raw.signal,
  });
  identities.set(request, {
    tenantId: c.get("tenantId"),
    keyId: c.get("keyId"),
    quotas: c.get("quotas"),
    limits: c.get("limits"),
    ...settings,
  });
  return ollamaRoutes.fetch(request, c.env, executionContextOf(c));
}
