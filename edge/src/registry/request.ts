import { parseJsonBody, parseRequest } from "@corral/protocol";
import type { Context } from "hono";
import type { z } from "zod";

/** Reads a JSON body and validates it with one of protocol's request schemas (Ollama's texts on failure). */
export async function readRequest<S extends z.ZodTypeAny>(c: Context, schema: S): Promise<z.output<S>> {
  return parseRequest(schema, parseJsonBody(await c.req.text()));
}
