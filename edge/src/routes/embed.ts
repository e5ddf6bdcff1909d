import { Hono } from "hono";
import type { AppBindings } from "../env";
import { relayInference } from "../relay/relay";

export const embedRoutes = new Hono<AppBindings>()
  .post("/embed", (c) => relayInference(c, "embed"))
  // The legacy single-prompt endpoint.
  .post("/embeddings", (c) => relayInference(c, "embeddings"));
