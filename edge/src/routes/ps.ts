import type { ProcessModelResponse } from "@corral/protocol";
import { Hono } from "hono";
import { blobRows } from "../db/blobs";
import { listModels } from "../db/models";
import type { AppBindings, Env } from "../env";
import { schedulerStub } from "../scheduler/client";
import type { FleetLoadedModel } from "../scheduler/types";
import { MediaType, parseManifest } from "../store/manifest";
import { detailsFromConfig } from "../store/show";
import { readBlobText } from "../store/store";

/**
 * `/api/ps` across the fleet, for the tenant's own models only: a model is running when its weights blob is
 * loaded on any runner. Weights shared with another tenant's model show under this tenant's own name(s) only.
 */
export const psRoutes = new Hono<AppBindings>().get("/ps", async (c) => {
  const tenantId = c.get("tenantId");
  const [loaded, rows] = await Promise.all([schedulerStub(c.env).loadedModels(), listModels(c.env.DB, tenantId)]);
  const byBlob = new Map<string, FleetLoadedModel>(loaded.map((m) => [m.model_blob, m]));

  const running: { row: (typeof rows)[number]; configDigest: string; fleet: FleetLoadedModel }[] = [];
  for (const row of rows) {
    const manifest = parseManifest(row.manifest);
    const weights = manifest.layers.find((l) => l.mediaType === MediaType.model);
    const fleet = weights && byBlob.get(weights.digest);
    if (fleet) running.push({ row, configDigest: manifest.config.digest, fleet });
  }
  const configs = await readConfigs(c.env, [...new Set(running.map((r) => r.configDigest))]);

  const models: ProcessModelResponse[] = running.map(({ row, configDigest, fleet }) => {
    const entry: ProcessModelResponse = {
      name: row.display_name,
      model: row.display_name,
      size: fleet.size,
      digest: row.digest.replace(/^sha256:/, ""),
      details: detailsFromConfig(configs.get(configDigest), ""),
      expires_at: fleet.expires_at,
      size_vram: fleet.size_vram,
    };
    if (fleet.context_length > 0) entry.context_length = fleet.context_length;
    return entry;
  });
  // Ollama lists the model that stays longest first.
  models.sort((a, b) => Date.parse(b.expires_at) - Date.parse(a.expires_at));
  return c.json({ models });
});

/** Config blobs are small and kept inline in D1; the bucket is read only for one that has no inline copy. */
async function readConfigs(env: Env, digests: string[]): Promise<Map<string, string | null>> {
  const rows = await blobRows(env.DB, digests);
  const out = new Map<string, string | null>();
  await Promise.all(
    digests.map(async (digest) => {
      // A missing or unreadable config only blanks the details; ps still lists the model.
      const text = rows.get(digest)?.content ?? (await readBlobText(env.BLOBS, digest).catch(() => null));
      out.set(digest, text);
    }),
  );
  return out;
}
