import { ApiError, copyRequestSchema } from "@corral/protocol";
import { Hono } from "hono";
import { getModel, putModelStatements } from "../db/models";
import type { AppBindings } from "../env";
import { releaseModelBlobs } from "../registry/gc";
import { manifestDigests, parseManifest } from "../registry/manifest";
import { requireModelName } from "../registry/names";
import { readRequest } from "../registry/request";
import { loadModel } from "../registry/resolve";

/**
 * `POST /api/copy`: the destination gets the source's manifest as is (same digest), in one D1 batch. If the
 * source is deleted meanwhile and its blobs collected, the batch's layer rows cannot find their blobs and the
 * copy fails as not found, instead of creating a model that points at nothing.
 */
export const copyRoutes = new Hono<AppBindings>().post("/copy", async (c) => {
  const request = await readRequest(c, copyRequestSchema);
  const tenantId = c.get("tenantId");
  const notFound = () => new ApiError(404, `model ${JSON.stringify(request.source)} not found`);
  const source = await loadModel(c.env, tenantId, request.source, notFound);
  const destination = requireModelName(request.destination);
  if (destination.key === source.key) return c.body(null, 200);
  const digests = manifestDigests(source.manifest);
  const replaced = await getModel(c.env.DB, tenantId, destination.key);
  try {
    await c.env.DB.batch(
      putModelStatements(
        c.env.DB,
        {
          tenant_id: tenantId,
          name: destination.key,
          display_name: destination.display,
          manifest: source.manifestText,
          digest: source.digest,
          size: source.size,
          modified_at: Date.now(),
        },
        digests,
      ),
    );
  } catch (err) {
    if (String(err).includes("NOT NULL constraint failed")) throw notFound();
    throw err;
  }
  if (replaced && replaced.digest !== source.digest) {
    // The destination's previous manifest is gone: release what only it used (best effort; the sweep retries).
    const stale = manifestDigests(parseManifest(replaced.manifest)).filter((d) => !digests.includes(d));
    await releaseModelBlobs(c.env, tenantId, stale, replaced.modified_at).catch((err) =>
      console.error("gc after copy failed", err),
    );
  }
  return c.body(null, 200);
});
