import type { ListModelResponse } from "@corral/protocol/types";
import { Hono } from "hono";
import type { AppBindings } from "../env";
import { loadTenantModels } from "../store/resolve";
import { describeModelLayers, detailsFromConfig } from "../store/show";

/**
 * `GET /api/tags` (and HEAD, which Hono answers from the GET route): the tenant's models, newest first, with
 * details from each config blob's inline copy and the capabilities /api/show reports (from the weights' cached
 * GGUF summary, the template and the projector layer) — one D1 batch; R2 only for a layer without an inline copy.
 */
export const tagsRoutes = new Hono<AppBindings>().get("/tags", async (c) => {
  const loaded = await loadTenantModels(c.env, c.get("tenantId"));
  const models = await Promise.all(
    loaded.map(async (m): Promise<ListModelResponse> => {
      const { capabilities } = await describeModelLayers(c.env, m);
      return {
        name: m.display_name,
        model: m.display_name,
        modified_at: new Date(m.modified_at).toISOString(),
        size: m.size,
        digest: m.digest.replace(/^sha256:/, ""),
        details: detailsFromConfig(m.contents.get(m.manifest.config.digest), ""),
        capabilities,
      };
    }),
  );
  return c.json({ models });
});
