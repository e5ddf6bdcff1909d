/**
 * OpenAI's error body, `{"error": {"message", "type", "param", "code"}}`, for everything under /v1: errors thrown
 * by the OpenAI routes, and Ollama `{"error": "..."}` answers of the shared inference pipeline, status kept.
 */
import { ApiError } from "@corral/protocol";
import { HTTPException } from "hono/http-exception";
import type { OpenAIErrorBody } from "./types";

/** A 400 that names the request field at fault (OpenAI's `param`). */
export class OpenAIRequestError extends ApiError {
  constructor(
    message: string,
    readonly param: string | null = null,
  ) {
    super(400, message);
    this.name = "OpenAIRequestError";
  }
}

/** Ollama's types (openai.NewError) for 400/404/other, with OpenAI's own for keys and rate limits. */
export function errorTypeFor(status: number): string {
  switch (status) {
    case 400:
    case 401:
      return "invalid_request_error";
    case 404:
      return "not_found_error";
    case 429:
      return "rate_limit_error";
    default:
      return "api_error";
  }
}

const CODE_BY_STATUS: Record<number, string> = { 401: "invalid_api_key", 429: "rate_limit_exceeded" };

export function openAIErrorBody(status: number, message: string, param: string | null = null): OpenAIErrorBody {
  return { error: { message, type: errorTypeFor(status), param, code: CODE_BY_STATUS[status] ?? null } };
}

export function openAIErrorResponse(
  status: number,
  message: string,
  param: string | null = null,
  headers?: HeadersInit,
): Response {
  const out = new Headers(headers);
  out.set("content-type", "application/json; charset=utf-8");
  return new Response(JSON.stringify(openAIErrorBody(status, message, param)), { status, headers: out });
}

/** For `onError`: what corral throws, as OpenAI's body. Unknown errors stay opaque, as in the Ollama routes. */
export function openAIErrorFromThrown(err: unknown): Response {
  if (err instanceof OpenAIRequestError) return openAIErrorResponse(400, err.message, err.param);
  if (err instanceof ApiError) return openAIErrorResponse(err.status, err.message);
  if (err instanceof HTTPException) return openAIErrorResponse(err.status, err.message || "error");
  console.error("unhandled error", err);
  return openAIErrorResponse(500, "internal server error");
}

/** True for paths the OpenAI-compatible API answers, whose errors must take OpenAI's shape. */
export const isOpenAIPath = (path: string): boolean => path === "/v1" || path.startsWith("/v1/");

/** The message of an Ollama error body; a body that is not one is the message itself (as Ollama's writeError). */
export function ollamaErrorMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === "object" && typeof (parsed as { error?: unknown }).error === "string") {
      return (parsed as { error: string }).error;
    }
  } catch {
    // not JSON: fall through
  }
  return text.trim() || "error";
}

/** Headers of an Ollama error answer worth keeping (a 429's Retry-After tells the client when to come back). */
const KEPT_HEADERS = ["retry-after"];

/** An Ollama error answer (status ≥ 400, `{"error": "..."}`) as the same status with OpenAI's body. */
export async function translateErrorResponse(res: Response): Promise<Response> {
  const message = ollamaErrorMessage(await res.text());
  const headers = new Headers();
  for (const name of KEPT_HEADERS) {
    const value = res.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  return openAIErrorResponse(res.status, message, null, headers);
}
