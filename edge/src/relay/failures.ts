/**
 * What scheduler refusals, limits, cancellations and runner failures are: ApiErrors with Ollama's status and text.
 * They are rendered, like every error, in edge/src/errors.ts (a JSON answer, or mid-stream an error line).
 */
import { ApiError, OllamaError } from "@corral/protocol";
import type { PermitResult } from "../scheduler/limiter";
import type { RefusalReason } from "../scheduler/types";

export const NO_RUNNER_MESSAGE = "no runner available, please try again";

/** Ollama answers a request whose client went away with 499. */
export const cancelledError = () => new ApiError(499, OllamaError.requestCanceled);

export function refusalError(reason: RefusalReason, detail?: string): ApiError {
  switch (reason) {
    case "queue_full":
      return new ApiError(503, OllamaError.queueFull);
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

/** A rate limit or quota refusal: 429, and Retry-After says when to come back. */
export const tooManyRequests = (permit: Extract<PermitResult, { ok: false }>): ApiError =>
  new ApiError(429, permit.message, { "retry-after": String(permit.retry_after_s) });

/** Runner statuses that mean "try another runner" rather than "this request is wrong". */
export const RETRYABLE_RUNNER_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);
