import type { ListModelResponse } from "@corral/protocol/types";
import { Hono } from "hono";
import { listModelsWithConfig } from "../db/models";
import type { AppBindings } from "../env";
import { detailsFromConfig } from "../store/show";

/**
 * `GET /api/tags` (and HEAD, which Hono answers from the GET route): the tenant's models, newest first, with
 * details from each config blob's inline copy — one D1 query, no R2 read.
 */
export const tagsRoutes = new Hono<AppBindings>().get("/tags", async (c) => {
  const rows = await listModelsWithConfig(c.env.DB, c.get("tenantId"));
  const models: ListModelResponse[] = rows.map((r) => ({
    name: r.display_name,
    model: r.display_name,
    modified_at: new Date(r.modified_at).toISOString(),
    size: r.size,
    digest: r.digest.replace(/^sha256:/, ""),
    details: detailsFromConfig(r.config, ""),
  }));
  return c.json({ models });
});
