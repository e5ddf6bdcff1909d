import { Hono } from "hono";
import type { AppBindings } from "../env";

/** Unauthenticated probes that Ollama clients make before anything else. */
export const rootRoutes = new Hono<AppBindings>()
  .get("/", (c) => c.text("Ollama is running"))
  .get("/api/version", (c) => c.json({ version: c.env.CORRAL_VERSION }));
