/**
 * The one place a request body is read. Every body is read up to the tenant's `body_bytes` bound (the defaults'
 * where no tenant is known: admin, runners), then parsed as Ollama's handlers read theirs (protocol's
 * parseJsonBody: empty is `missing request body`, bad JSON gets Go's texts, only the first JSON value counts), then
 * validated: Ollama's API requests with Ollama's texts (parseRequest), corral's own bodies (admin, uploads, runner
 * messages) with `invalid <subject>: <field>: <problem>` (parseBody).
 */
import { parseBody, parseJsonBody, parseRequest } from "@corral/protocol";
import type { Context } from "hono";
import type { z } from "zod";
import { bodyTooLarge, REQUEST_LIMIT_DEFAULTS, type RequestLimits } from "./bounds";
import { TurnBudget } from "./turns";

/** The body as JSON, unvalidated: for translators (OpenAI) and parsers that take `unknown`. */
export async function readBody(c: Context): Promise<unknown> {
  const limits = c.get("limits") as RequestLimits | undefined;
  return parseJsonBody(await readText(c.req.raw, limits?.body_bytes ?? REQUEST_LIMIT_DEFAULTS.body_bytes));
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
 * The body as UTF-8 text, refused (400 naming the bound) once it passes `limit` bytes: a declared Content-Length
 * past it before a byte is kept, a chunked body as soon as its count passes the bound. Nothing past the bound is
 * buffered, decoded or parsed; the rest is read and dropped (see discardBody for why it is not cancelled).
 */
async function readText(request: Request, limit: number): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > limit) {
    await discardBody(request.body);
    throw bodyTooLarge(declared, limit);
  }
  // A declared length is what the runtime delivers (HTTP framing): within the bound, the native reader is fastest.
  if (declared <= limit || !request.body) return request.text();
  const reader = request.body.getReader();
  const budget = new TurnBudget();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    await budget.spend(read.value.byteLength);
    bytes += read.value.byteLength;
    if (bytes > limit) {
      await drain(reader);
      throw bodyTooLarge(undefined, limit);
    }
    chunks.push(read.value);
  }
  const whole = new Uint8Array(bytes);
  let offset = 0;
  for (const chunk of chunks) {
    whole.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(whole);
}

/**
 * Reads a request body to its end and throws the bytes away, for answers that do not need them (a blob the store
 * has already, a body past its bound). Cancelling instead makes wrangler dev's proxy answer
 * `503 Your worker restarted mid-request` to the client (issue #9); the body's size is bounded by the platform's
 * request limit.
 */
export async function discardBody(body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (!body || body.locked) return;
  await drain(body.getReader());
}

/** In bounded turns (turns.ts): a body already buffered would otherwise hold the isolate until its end. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  const budget = new TurnBudget();
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    await budget.spend(read.value.byteLength);
  }
}
