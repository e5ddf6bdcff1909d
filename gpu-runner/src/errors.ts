/**
 * The runner's failures and the one place that turns any failure into an HTTP status and Ollama's
 * `{"error": "..."}` body.
 */
import { ApiError, errorText, isApiError, OllamaError } from "@corral/protocol/errors";

/** The client (the edge) went away; nobody reads the answer, but logs and metrics see 499 like Ollama's. */
export const cancelled = () => new ApiError(499, OllamaError.requestCanceled);

/** Every sequence is taken and the wait queue is full, or memory cannot be freed: the edge retries elsewhere. */
export const busy = (detail: string = OllamaError.queueFull) => new ApiError(503, detail);

/** The blob store does not have a blob the edge said exists. */
export const blobMissing = (digest: string) => new ApiError(404, `model blob ${digest} not found`);

export function isAbortError(err: unknown): boolean {
  return (
    err instanceof Error &&
    (err.name === "AbortError" || (err as { code?: unknown }).code === "ABORT_ERR" || err.name === "CancelledError")
  );
}

export interface ErrorResponse {
  status: number;
  message: string;
}

/** Maps a failure to its response: 400 bad request, 404 blob missing, 499 cancelled, 503 busy, 500 otherwise. */
export function toErrorResponse(err: unknown, signal?: AbortSignal): ErrorResponse {
  if (isApiError(err)) return { status: err.status, message: err.message };
  if (signal?.aborted || isAbortError(err)) return { status: 499, message: OllamaError.requestCanceled };
  return { status: 500, message: errorText(err) || "internal error" };
}
