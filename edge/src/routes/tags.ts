import type { ListModelResponse } from "@corral/protocol/types";
import { Hono } from "hono";
import type { AppBindings } from "../env";
import { detailsFromConfig } from "../registry/show";

/**
 * `GET /api/tags` (and HEAD, which Hono answers from the GET route): the tenant's models, newest first, with
 * details from each config blob's inline copy — one D1 query, no R2 read.
 */
export const tagsRoutes = new Hono<AppBindings>().get("/tags", async (c) => {
  const { results } = await c.env.DB.prepare(
    `SELECT m.display_name, m.digest, m.size, m.modified_at, b.content AS config
     FROM models m LEFT JOIN blobs b ON b.digest = json_extract(m.manifest, '$.config.digest')
     WHERE m.tenant_id = ? ORDER BY m.modified_at DESC, m.name`,
  )
    .bind(c.get("tenantId"))
    .all<{ display_name: string; digest: string; size: number; modified_at: number; config: string | null }>();
  const models: ListModelResponse[] = results.map((r) => ({
    name: r.display_name,
    model: r.display_name,
    modified_at: new Date(r.modified_at).toISOString(),
    size: r.size,
    digest: r.digest.replace(/^sha256:/, ""),
    details: detailsFromConfig(r.config, ""),
  }));
  return c.json({ models });
});
