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
      // One model whose weights cannot be read (a corrupt or foreign blob) must not take the whole list down: it is
      // listed without capabilities, as /api/show answers for it on its own.
      const capabilities = await describeModelLayers(c.env, m).then(
        (described) => described.capabilities,
        (err: unknown) => {
          console.warn(`tags: no capabilities for ${m.display_name}: ${err instanceof Error ? err.message : err}`);
          return undefined;
        },
      );
      return {
        name: m.display_name,
        model: m.display_name,
        modified_at: new Date(m.modified_at).toISOString(),
        size: m.size,
        digest: m.digest.replace(/^sha256:/, ""),
        details: detailsFromConfig(m.contents.get(m.manifest.config.digest), ""),
        ...(capabilities ? { capabilities } : {}),
      };
    }),
  );
  return c.json({ models });
});
