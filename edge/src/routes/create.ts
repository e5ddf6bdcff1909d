import { createRequestSchema } from "@corral/protocol";
import { Hono } from "hono";
import { readRequest } from "../body";
import { checkCreateBounds } from "../bounds";
import type { AppBindings } from "../env";
import { acquireJobPermits, type JobKind, releasingWhenDone } from "../job-permits";
import { progressResponse } from "../registry-client/progress";
import { commitCreate } from "../store/create";
import { planCreate } from "../store/create-plan";

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
  return progressResponse(releasingWhenDone(commitCreate(c.env, plan, c.req.raw.signal), permit), request.stream);
});
