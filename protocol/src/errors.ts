/**
 * The one typed error of corral, and Ollama's error texts that both the edge and the runner answer with.
 * Anything that should reach a client is thrown as an ApiError; the edge renders it in the dialect of the endpoint
 * (edge/src/errors.ts), the runner in Ollama's (gpu-runner/src/errors.ts).
 */
export class ApiError extends Error {
  /** Response headers the answer must carry (a 429's Retry-After); rendered by every dialect. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    readonly status: number,
    message: string,
    headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.headers = headers;
  }
}

export const isApiError = (err: unknown): err is ApiError => err instanceof ApiError;

/** The text of anything thrown, for logs and for messages that wrap it. */
export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Ollama's texts (server/routes.go, api/types.go, errtypes), each written once. */
export const OllamaError = {
  /** Answered with 499 when the client went away. */
  requestCanceled: "request canceled",
  /** ErrMaxQueue, two spaces included. */
  queueFull: "server busy, please try again.  maximum pending requests exceeded",
  /** errtypes.InvalidModelNameErrMsg. */
  invalidModelName: "invalid model name",
  missingBody: "missing request body",
  modelRequired: "model is required",
  /** The runner's text for an input longer than the context when `truncate` is false (generate, chat, embed). */
  inputTooLong: "the input length exceeds the context length",
} as const;
