import { ApiError } from "@corral/protocol";
import type { Context } from "hono";
import type { z } from "zod";

/** Reads and validates a JSON body with one zod schema; failures are 400s in Ollama's error form. */
export async function readJson<T extends z.ZodTypeAny>(c: Context, schema: T): Promise<z.infer<T>> {
  const text = await c.req.text();
  if (text.trim() === "") throw new ApiError(400, "missing request body");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ApiError(400, "invalid JSON in request body");
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.join(".");
    throw new ApiError(400, path ? `invalid ${path}: ${issue?.message}` : (issue?.message ?? "invalid request"));
  }
  return parsed.data;
}

/**
 * Reads a request body to its end and throws the bytes away, for answers that do not need them (a blob the store
 * has already). Cancelling instead makes wrangler dev's proxy answer `503 Your worker restarted mid-request`
 * to the client (issue #9); the body's size is bounded by the platform's request limit.
 */
export async function discardBody(body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (!body || body.locked) return;
  const reader = body.getReader();
  while (!(await reader.read()).done) {}
}
