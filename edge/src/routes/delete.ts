import { ApiError, deleteRequestSchema } from "@corral/protocol";
import { Hono } from "hono";
import { readRequest } from "../body";
import { deleteModel } from "../db/models";
import type { AppBindings } from "../env";
import { releaseModelBlobs, sweepBlobs } from "../store/gc";
import { manifestDigests, parseManifest } from "../store/manifest";
import { tenantModelName } from "../store/names";

/**
 * `DELETE /api/delete`: removes the model row and its layer rows in one batch, then collects the blobs that nothing
 * needs any more, safely under concurrent creates (see store/gc.ts).
 */
export const deleteRoutes = new Hono<AppBindings>().delete("/delete", async (c) => {
  const request = await readRequest(c, deleteRequestSchema);
  const tenantId = c.get("tenantId");
  const notFound = () => new ApiError(404, `model '${request.model}' not found`);
  const name = tenantModelName(request.model);
  if (!name) throw notFound();
  const row = await deleteModel(c.env.DB, tenantId, name.key);
  if (!row) throw notFound();
  const digests = manifestDigests(parseManifest(row.manifest));
  // The model is gone; collecting its blobs is best effort (the sweep retries whatever this leaves).
  try {
    await releaseModelBlobs(c.env, tenantId, digests, row.modified_at);
    await sweepBlobs(c.env);
  } catch (err) {
    console.error("blob gc after delete failed", err);
  }
  return c.body(null, 200);
});
