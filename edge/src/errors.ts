import { ApiError } from "@corral/protocol";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** The one place any thrown error becomes Ollama's `{"error": "..."}` body. */
export function toErrorResponse(err: unknown, c: Context): Response {
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
