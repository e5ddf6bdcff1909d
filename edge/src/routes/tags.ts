import { Hono } from "hono";
import { listModels } from "../db/models";
import type { AppBindings } from "../env";

export const tagsRoutes = new Hono<AppBindings>().get("/tags", async (c) => {
  const rows = await listModels(c.env.DB, c.get("tenantId"));
  return c.json({
    models: rows.map((r) => ({
      name: r.display_name,
      model: r.display_name,
      modified_at: new Date(r.modified_at).toISOString(),
      size: r.size,
      digest: r.digest.replace(/^sha256:/, ""),
    })),
  });
});
