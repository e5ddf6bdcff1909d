/**
 * Anthropic's error body, `{"type": "error", "error": {"type", "message"}, "request_id"}`, for everything under
 * /v1/messages: errors thrown by its routes (authentication included) and Ollama `{"error": "..."}` answers of the
 * shared inference pipeline, status kept. The error types follow Ollama's anthropic.NewError. Rendered by
 * edge/src/errors.ts (`anthropicError`), the one place errors become responses.
 */
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
