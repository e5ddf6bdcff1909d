/**
 * Anthropic's error body, `{"type": "error", "error": {"type", "message"}, "request_id"}`, for everything under
 * /v1/messages: errors thrown by its routes (authentication included) and Ollama `{"error": "..."}` answers of the
 * shared inference pipeline, status kept. The error types follow Ollama's anthropic.NewError.
 */
import { ApiError } from "@corral/protocol";
import { HTTPException } from "hono/http-exception";
import { ollamaErrorMessage } from "../openai/errors";
import { randomId } from "../openai/translate-response";

export interface AnthropicErrorBody {
  type: "error";
  error: { type: string; message: string };
  request_id: string;
}

export function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    default:
      return "api_error";
  }
}

export function anthropicErrorBody(status: number, message: string): AnthropicErrorBody {
  return { type: "error", error: { type: anthropicErrorType(status), message }, request_id: randomId("req_") };
}

export function anthropicErrorResponse(status: number, message: string, headers?: HeadersInit): Response {
  const out = new Headers(headers);
  out.set("content-type", "application/json; charset=utf-8");
  return new Response(JSON.stringify(anthropicErrorBody(status, message)), { status, headers: out });
}

/** For `onError`: what corral throws, in Anthropic's shape. Unknown errors stay opaque, as on the Ollama routes. */
export function anthropicErrorFromThrown(err: unknown): Response {
  if (err instanceof ApiError) return anthropicErrorResponse(err.status, err.message);
  if (err instanceof HTTPException) return anthropicErrorResponse(err.status, err.message || "error");
  console.error("unhandled error", err);
  return anthropicErrorResponse(500, "internal server error");
}

/** Headers of an Ollama error answer worth keeping (a 429's Retry-After tells the client when to come back). */
const KEPT_HEADERS = ["retry-after"];

/** An Ollama error answer (status ≥ 400, `{"error": "..."}`) as the same status with Anthropic's body. */
export async function translateErrorResponse(res: Response): Promise<Response> {
  const message = ollamaErrorMessage(await res.text());
  const headers = new Headers();
  for (const name of KEPT_HEADERS) {
    const value = res.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  return anthropicErrorResponse(res.status, message, headers);
}
