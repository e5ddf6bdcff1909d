import { ApiError } from "@corral/protocol";
import { Hono } from "hono";
import { requireTenant } from "./auth";
import type { AppBindings } from "./env";
import { toErrorResponse } from "./errors";
import { adminRoutes } from "./routes/admin";
import { rootRoutes } from "./routes/root";
import { tagsRoutes } from "./routes/tags";

/** The route table, top to bottom. Every /api/* route below the auth line needs a tenant key. */
export function createApp() {
  const app = new Hono<AppBindings>();
  app.onError(toErrorResponse);
  app.notFound((c) => c.json({ error: "404 page not found" }, 404));

  app.route("/", rootRoutes);
  app.route("/admin", adminRoutes);

  app.use("/api/*", requireTenant);
  app.route("/api", tagsRoutes);

  app.all("/api/*", () => {
    throw new ApiError(404, "404 page not found");
  });
  return app;
}
