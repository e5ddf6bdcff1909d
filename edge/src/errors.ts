import { ApiError } from "@corral/protocol";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { isOpenAIPath, openAIErrorFromThrown } from "./openai/errors";

/** The one place any thrown error becomes Ollama's `{"error": "..."}` body. */
export function toErrorResponse(err: unknown, c: Context): Response {
  // OpenAI clients expect OpenAI's error object on /v1, whoever threw (auth runs before the /v1 router).
  if (isOpenAIPath(c.req.path)) return openAIErrorFromThrown(err);
  if (err instanceof ApiError) {
    return c.json({ error: err.message }, err.status as ContentfulStatusCode);
  }
  if (err instanceof HTTPException) {
    return c.json({ error: err.message || "error" }, err.status);
  }
  console.error("unhandled error", err);
  return c.json({ error: "internal server error" }, 500);
}

export const notFound = (what = "model") => new ApiError(404, `${what} not found`);
