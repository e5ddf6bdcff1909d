/**
 * The one place where scheduler refusals, limits, cancellations and runner failures become what the client sees:
 * a status and Ollama's `{"error": ...}` text (or, mid-stream, an error line).
 */
import { ApiError } from "@corral/protocol";
import type { PermitResult } from "../scheduler/limiter";
import type { RefusalReason } from "../scheduler/types";

/** Ollama's ErrMaxQueue text, two spaces included. */
export const QUEUE_FULL_MESSAGE = "server busy, please try again.  maximum pending requests exceeded";
/** Ollama answers a request whose client went away with 499 and this text. */
export const CANCELLED_MESSAGE = "request canceled";
export const NO_RUNNER_MESSAGE = "no runner available, please try again";

export const cancelledError = () => new ApiError(499, CANCELLED_MESSAGE);

export function refusalError(reason: RefusalReason, detail?: string): ApiError {
  switch (reason) {
    case "queue_full":
      return new ApiError(503, QUEUE_FULL_MESSAGE);
    case "no_runner":
      return new ApiError(503, NO_RUNNER_MESSAGE);
    case "too_large":
      // Ollama's wording when a model cannot fit the machine it runs on.
      return new ApiError(500, `model requires more system memory than is available${detail ? ` (${detail})` : ""}`);
    case "cancelled":
      return cancelledError();
  }
}

/** Every attempt failed before the first byte. */
export const runnersFailedError = (lastError: string) =>
  new ApiError(503, `no runner could serve the request, please try again: ${lastError}`);

/** 429 with Retry-After; returned rather than thrown because the error handler sets no headers. */
export function tooManyRequests(permit: Extract<PermitResult, { ok: false }>): Response {
  return Response.json(
    { error: permit.message },
    { status: 429, headers: { "retry-after": String(permit.retry_after_s) } },
  );
}

const encoder = new TextEncoder();

/** The line that ends a stream whose runner failed after the first byte. */
export const errorLine = (message: string): Uint8Array => encoder.encode(`${JSON.stringify({ error: message })}\n`);

export const describeError = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Runner statuses that mean "try another runner" rather than "this request is wrong". */
export const RETRYABLE_RUNNER_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);
