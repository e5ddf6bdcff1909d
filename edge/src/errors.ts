/**
 * The one place an error becomes what the client sees. Whatever was thrown is first read as a ClientError
 * ({@link clientError}: an ApiError keeps its status, text and headers; anything unexpected is logged and becomes an
 * opaque 500). Then one renderer per dialect writes it:
 * - {@link ollamaError}: Ollama's `{"error": "..."}` answer;
 * - {@link ndjsonErrorLine}: Ollama's `{"error": "..."}` line that ends a stream already under way;
 * - {@link openAIError}: OpenAI's `{"error": {message, type, param, code}}` (under /v1; {@link openAIErrorBody} is
 *   also the body of its mid-stream error event).
 * - {@link anthropicError}: Anthropic's `{"type": "error", "error": {type, message}}` (under /v1/messages).
 * The app's `onError` ({@link toErrorResponse}) picks the dialect by path; routers with their own dialect set their
 * `onError` to the same renderer. Another API surface is one more renderer and one more entry in DIALECTS.
 */
import { ApiError } from "@corral/protocol";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { anthropicErrorBody } from "./anthropic/errors";
import { OpenAIRequestError } from "./openai/request-error";
import type { OpenAIErrorBody } from "./openai/types";

export interface ClientError {
  status: number;
  message: string;
  headers: Readonly<Record<string, string>>;
  /** The request field at fault, for dialects that name it (OpenAI's `param`). */
  param: string | null;
}

/** What a thrown value tells the client. Only ApiErrors (and Hono's HTTPExceptions) say anything specific. */
export function clientError(err: unknown): ClientError {
  if (err instanceof ApiError) {
    const param = err instanceof OpenAIRequestError ? err.param : null;
    return { status: err.status, message: err.message, headers: err.headers, param };
  }
  if (err instanceof HTTPException)
    return { status: err.status, message: err.message || "error", headers: {}, param: null };
  console.error("unhandled error", err);
  return { status: 500, message: "internal server error", headers: {}, param: null };
}

export type ErrorRenderer = (error: ClientError) => Response;

function jsonResponse(body: unknown, error: ClientError): Response {
  const headers = new Headers(error.headers);
  headers.set("content-type", "application/json; charset=utf-8");
  return new Response(JSON.stringify(body), { status: error.status, headers });
}

/** Ollama's error answer. */
export const ollamaError: ErrorRenderer = (error) => jsonResponse({ error: error.message }, error);

/** Ollama's error line: what ends an NDJSON stream (progress or inference) that fails after its first line. */
export const ndjsonErrorLine = (err: unknown): { error: string } => ({ error: clientError(err).message });

/** Ollama's types (openai.NewError) for 400/404/other, with OpenAI's own for keys and rate limits. */
function openAIErrorType(status: number): string {
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

const OPENAI_CODE_BY_STATUS: Record<number, string> = { 401: "invalid_api_key", 429: "rate_limit_exceeded" };

export function openAIErrorBody(status: number, message: string, param: string | null = null): OpenAIErrorBody {
  return { error: { message, type: openAIErrorType(status), param, code: OPENAI_CODE_BY_STATUS[status] ?? null } };
}

/** OpenAI's error answer. */
export const openAIError: ErrorRenderer = (error) =>
  jsonResponse(openAIErrorBody(error.status, error.message, error.param), error);

/** Anthropic's error answer. */
export const anthropicError: ErrorRenderer = (error) =>
  jsonResponse(anthropicErrorBody(error.status, error.message), error);

/** True for the Anthropic-compatible API's paths. */
export const isAnthropicPath = (path: string): boolean => path === "/v1/messages" || path.startsWith("/v1/messages/");

/** True for paths the OpenAI-compatible API answers, whose errors must take OpenAI's shape. */
export const isOpenAIPath = (path: string): boolean => path === "/v1" || path.startsWith("/v1/");

/** Path prefixes with their own dialect; every other path answers in Ollama's. */
const DIALECTS: { matches: (path: string) => boolean; render: ErrorRenderer }[] = [
  { matches: isAnthropicPath, render: anthropicError },
  // OpenAI clients expect OpenAI's error object on /v1, whoever threw (auth runs before the /v1 router).
  { matches: isOpenAIPath, render: openAIError },
];

/** The app's `onError`: anything thrown, in the dialect of the path that was asked. */
export function toErrorResponse(err: unknown, c: Context): Response {
  const render = DIALECTS.find((d) => d.matches(c.req.path))?.render ?? ollamaError;
  return render(clientError(err));
}

/** An Ollama error answer of the inference pipeline, re-rendered in another dialect (status and Retry-After kept). */
export async function inDialect(render: ErrorRenderer, res: Response): Promise<Response> {
  return render(await readOllamaError(res));
}

/** The message of an Ollama `{"error": "..."}` body or NDJSON line; undefined for anything else. */
export function ollamaErrorOf(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === "object" && typeof (parsed as { error?: unknown }).error === "string") {
      return (parsed as { error: string }).error;
    }
  } catch {
    // not JSON
  }
  return undefined;
}

/** The message of an Ollama error answer; a body that is not one is the message itself (as Ollama's writeError). */
export const ollamaErrorMessage = (text: string): string => ollamaErrorOf(text) ?? (text.trim() || "error");

/** Headers of an Ollama error answer worth keeping (a 429's Retry-After tells the client when to come back). */
const KEPT_HEADERS = ["retry-after"];

/** An Ollama error answer (status ≥ 400, `{"error": "..."}`) read back, for another dialect to render. */
export async function readOllamaError(res: Response): Promise<ClientError> {
  const headers: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const value = res.headers.get(name);
    if (value !== null) headers[name] = value;
  }
  return { status: res.status, message: ollamaErrorMessage(await res.text()), headers, param: null };
}
