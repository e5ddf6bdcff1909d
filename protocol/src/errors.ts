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
