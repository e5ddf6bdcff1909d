import { ApiError, copyRequestSchema } from "@corral/protocol";
import { Hono } from "hono";
import { readRequest } from "../body";
import { pinForWriteOrWait, unpin } from "../db/blobs";
import type { AppBindings } from "../env";
import { manifestDigests } from "../store/manifest";
import { requireModelName } from "../store/names";
import { loadModel } from "../store/resolve";
import { saveModel } from "../store/save-model";

/**
 * `POST /api/copy`: the destination gets the source's manifest as is (same digest). The source's blobs are pinned
 * while it is saved, as create and pull pin theirs; a copy whose source was deleted and collected before the pins
 * took hold fails like any save that lost that race (409), instead of creating a model that points at nothing.
 */
export const copyRoutes = new Hono<AppBindings>().post("/copy", async (c) => {
  const request = await readRequest(c, copyRequestSchema);
  const tenantId = c.get("tenantId");
  const source = await loadModel(c.env, tenantId, request.source, () => notFound(request.source));
  const destination = requireModelName(request.destination);
  if (destination.key === source.key) return c.body(null, 200);
  const digests = manifestDigests(source.manifest);
  const holder = `copy-${crypto.randomUUID()}`;
  await pinForWriteOrWait(c.env.DB, digests, holder);
  const saved = await saveModel(c.env, {
    tenantId,
    name: destination,
    manifest: { text: source.manifestText, digest: source.digest, size: source.size },
    digests,
    holder,
    verb: "copied",
  }).catch(async (err) => {
    await unpin(c.env.DB, holder);
    throw err;
  });
  await saved.releaseStale();
  return c.body(null, 200);
});

/** Ollama's copy answers a missing source without its usual "try pulling it first". */
const notFound = (source: string) => new ApiError(404, `model ${JSON.stringify(source)} not found`);
