/**
 * The edge's route table. Where each concern lives, one file each:
 * - a model is saved under a name (create, pull, copy): store/save-model.ts;
 * - an error becomes an answer (Ollama JSON, NDJSON error line, OpenAI, Anthropic; one renderer each): errors.ts;
 * - a request body is read and validated: body.ts;
 * - SQL: db/ (one module per table group);
 * - wire types and Ollama's error texts: protocol/ (types.ts, errors.ts).
 * Folders: routes/ (one module per API resource), store/ (the tenants' model store: blobs, manifests, create,
 * quantize, convert), registry-client/ (pull and push against OCI registries), relay/ (inference to runners),
 * scheduler/ (the Durable Object), openai/ and anthropic/ (the compatible APIs), console/ (the web console).
 * Tests: pure unit tests sit beside the code (`*.test.ts`); tests that drive the whole Worker through HTTP inside
 * workerd (bindings, D1, R2, Durable Objects) are in edge/test/, as cross-process tests are in the root test/.
 */
import { ApiError } from "@corral/protocol";
import { Hono } from "hono";
import { anthropicRoutes } from "./anthropic/routes";
import { requireAdmin, requireRunner, requireTenant } from "./auth";
import { consoleRoutes } from "./console";
import type { AppBindings } from "./env";
import { toErrorResponse } from "./errors";
import { responsesRoutes } from "./openai/responses-routes";
import { adminRoutes } from "./routes/admin";
import { blobsRoutes } from "./routes/blobs";
import { copyRoutes } from "./routes/copy";
import { createRoutes } from "./routes/create";
import { deleteRoutes } from "./routes/delete";
import { inferenceRoutes } from "./routes/inference";
import { internalRoutes } from "./routes/internal";
import { openaiRoutes } from "./routes/openai";
import { psRoutes } from "./routes/ps";
import { pullRoutes } from "./routes/pull";
import { pushRoutes } from "./routes/push";
import { registryCredentialsRoutes } from "./routes/registry-credentials";
import { rootRoutes } from "./routes/root";
import { showRoutes } from "./routes/show";
import { tagsRoutes } from "./routes/tags";
import { usageRoutes } from "./routes/usage";
import { schedulerMetrics } from "./scheduler/stats";

/** The route table, top to bottom. Each module is one API resource and mounts its own paths under its prefix. */
export function createApp() {
  const app = new Hono<AppBindings>();
  app.onError(toErrorResponse);
  app.notFound((c) => toErrorResponse(new ApiError(404, "404 page not found"), c));

  // Open: Ollama clients probe these before sending a key.
  app.route("/", rootRoutes);
  // The web console (HTML pages for tenants and operators) calls back into this same route table.
  app.route("/console", consoleRoutes(app));

  // Operators (admin secret) and runners (runner secret).
  app.route("/admin", adminRoutes);
  app.get("/metrics", requireAdmin, async (c) =>
    c.text(await schedulerMetrics(c.env), 200, { "content-type": "text/plain; version=0.0.4" }),
  );
  app.use("/internal/*", requireRunner);
  app.route("/internal", internalRoutes);

  // Tenants (API key).
  app.use("/api/*", requireTenant);
  app.route("/api", inferenceRoutes);
  app.route("/api", createRoutes);
  app.route("/api", blobsRoutes);
  app.route("/api", tagsRoutes);
  app.route("/api", showRoutes);
  app.route("/api", copyRoutes);
  app.route("/api", deleteRoutes);
  app.route("/api", pullRoutes);
  app.route("/api", pushRoutes);
  app.route("/api", registryCredentialsRoutes);
  app.route("/api", psRoutes);
  app.route("/api", usageRoutes);

  // Anthropic's Messages API (its own key header and error shape), then the OpenAI-compatible endpoints beside
  // Ollama's, as Ollama itself offers them. Messages answers every request under its path before /v1's Bearer check.
  app.route("/v1/messages", anthropicRoutes);
  app.use("/v1/*", requireTenant);
  app.route("/v1/responses", responsesRoutes);
  app.route("/v1", openaiRoutes);

  app.all("/api/*", () => {
    throw new ApiError(404, "404 page not found");
  });
  return app;
}
