import { pushRequestSchema } from "@corral/protocol";
import { Hono } from "hono";
import { readRequest } from "../body";
import type { AppBindings } from "../env";
import { acquireJobPermits, releasingWhenDone } from "../job-permits";
import type { OciEnv } from "../registry-client/config";
import { progressResponse } from "../registry-client/progress";
import { pushModel } from "../registry-client/push";

/** `POST /api/push`: a model of the tenant's to an OCI registry (credentials: routes/registry-credentials.ts). */
export const pushRoutes = new Hono<AppBindings>().post("/push", async (c) => {
  const request = await readRequest(c, pushRequestSchema);
  const permit = await acquireJobPermits(c.env, c.get("tenantId"), ["push"], c.get("limits"), (p) =>
    c.executionCtx.waitUntil(p),
  );
  const cancel = new AbortController();
  const job = releasingWhenDone(pushModel(c.env as OciEnv, c.get("tenantId"), request, cancel.signal), permit);
  return progressResponse(job, request.stream, () => cancel.abort(new Error("push canceled")));
});
