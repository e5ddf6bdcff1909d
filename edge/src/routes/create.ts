import { createRequestSchema, ndjsonStream } from "@corral/protocol";
import type { ProgressResponse } from "@corral/protocol/types";
import { Hono } from "hono";
import { checkCreateBounds } from "../bounds";
import type { AppBindings } from "../env";
import { acquireJobPermits, type JobKind, releasingWhenDone } from "../job-permits";
import { commitCreate } from "../registry/create";
import { planCreate } from "../registry/create-plan";
import { readRequest } from "../registry/request";

/**
 * `POST /api/create`, both forms (new: from/files/adapters/...; seed: name + modelfile). Every check runs before
 * the first progress line, so bad input is a plain 4xx; a failure while writing becomes an `{"error"}` line.
 */
export const createRoutes = new Hono<AppBindings>().post("/create", async (c) => {
  const request = await readRequest(c, createRequestSchema);
  checkCreateBounds(request, c.get("limits"));
  // Before planning, which pins blobs: a refused create leaves nothing behind.
  const kinds: JobKind[] = request.quantize ? ["create", "quantize"] : ["create"];
  const permit = await acquireJobPermits(c.env, c.get("tenantId"), kinds, c.get("limits"), (p) =>
    c.executionCtx.waitUntil(p),
  );
  let plan: Awaited<ReturnType<typeof planCreate>>;
  try {
    plan = await planCreate(c.env, c.get("tenantId"), request);
  } catch (err) {
    permit.release();
    throw err;
  }
  const progress = releasingWhenDone(commitCreate(c.env, plan, c.req.raw.signal), permit);

  if (!request.stream) {
    let last: ProgressResponse | undefined;
    for await (const line of progress) last = line;
    return c.json(last);
  }
  // The first line is awaited here, so a failure before any output still gets its own status code.
  const first = await progress.next();
  return new Response(ndjsonStream(withErrorLine(first, progress)), {
    headers: { "content-type": "application/x-ndjson" },
  });
});

async function* withErrorLine(
  first: IteratorResult<ProgressResponse>,
  rest: AsyncGenerator<ProgressResponse>,
): AsyncGenerator<ProgressResponse | { error: string }> {
  if (first.done) return;
  yield first.value;
  try {
    yield* rest;
  } catch (err) {
    if (!(err instanceof Error && err.name === "ApiError")) console.error("create failed", err);
    yield { error: err instanceof Error && err.name === "ApiError" ? err.message : "internal server error" };
  }
}
