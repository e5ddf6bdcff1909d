import { createRequestSchema } from "@corral/protocol";
import { Hono } from "hono";
import { readRequest } from "../body";
import type { AppBindings } from "../env";
import { progressResponse } from "../oci/progress";
import { commitCreate } from "../registry/create";
import { planCreate } from "../registry/create-plan";

/**
 * `POST /api/create`, both forms (new: from/files/adapters/...; seed: name + modelfile). Every check runs before
 * the first progress line, so bad input is a plain 4xx; a failure while writing becomes an `{"error"}` line.
 */
export const createRoutes = new Hono<AppBindings>().post("/create", async (c) => {
  const request = await readRequest(c, createRequestSchema);
  const plan = await planCreate(c.env, c.get("tenantId"), request);
  return progressResponse(commitCreate(c.env, plan, c.req.raw.signal), request.stream);
});
