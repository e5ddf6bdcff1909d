import { pullRequestSchema } from "@corral/protocol";
import { Hono } from "hono";
import { readRequest } from "../body";
import type { AppBindings } from "../env";
import { acquireJobPermits, releasingWhenDone } from "../job-permits";
import type { OciEnv } from "../registry-client/config";
import { progressResponse } from "../registry-client/progress";
import { pullModel } from "../registry-client/pull";

/** `POST /api/pull` (edge/PULL_PUSH.md): progress as NDJSON, or only the last object with `stream: false`. */
export const pullRoutes = new Hono<AppBindings>().post("/pull", async (c) => {
  const request = await readRequest(c, pullRequestSchema);
  const permit = await acquireJobPermits(c.env, c.get("tenantId"), ["pull"], c.get("limits"), (p) =>
    c.executionCtx.waitUntil(p),
  );
  const cancel = new AbortController();
  const job = releasingWhenDone(pullModel(c.env as OciEnv, c.get("tenantId"), request, cancel.signal), permit);
  return progressResponse(job, request.stream, () => cancel.abort(new Error("pull canceled")));
});
