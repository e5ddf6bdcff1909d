/**
 * The one typed error of corral. Anything that should reach a client as Ollama's `{"error": "..."}` body
 * is thrown as an ApiError; the edge's single `onError` (and the runner's) turns it into the response.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export const isApiError = (err: unknown): err is ApiError => err instanceof ApiError;

/** Ollama's runner text for an input longer than the context when `truncate` is false (generate, chat, embed). */
export const INPUT_TOO_LONG_MESSAGE = "the input length exceeds the context length";
