/**
 * The one place a request body is read. Every body is read as Ollama's handlers read theirs (protocol's
 * parseJsonBody: empty is `missing request body`, bad JSON gets Go's texts, only the first JSON value counts), then
 * validated: Ollama's API requests with Ollama's texts (parseRequest), corral's own bodies (admin, uploads, runner
 * messages) with `invalid <subject>: <field>: <problem>` (parseBody).
 */
import { parseBody, parseJsonBody, parseRequest } from "@corral/protocol";
import type { Context } from "hono";
import type { z } from "zod";

/** The body as JSON, unvalidated: for translators (OpenAI) and parsers that take `unknown`. */
export async function readBody(c: Context): Promise<unknown> {
  return parseJsonBody(await c.req.text());
}

/** An Ollama API request, validated with one of protocol's request schemas (Ollama's texts on failure). */
export async function readRequest<S extends z.ZodTypeAny>(c: Context, schema: S): Promise<z.output<S>> {
  return parseRequest(schema, await readBody(c));
}

/** One of corral's own bodies, validated with `schema`; failures are 400s naming `subject` and the field. */
export async function readJson<S extends z.ZodTypeAny>(
  c: Context,
  schema: S,
  subject = "request",
): Promise<z.output<S>> {
  return parseBody(schema, await readBody(c), subject);
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
