import { Hono } from "hono";
import type { AppBindings } from "../env";
import { relayInference } from "../relay/relay";

/** Generate, chat and embed: each request goes through the relay to a runner (edge/src/relay/relay.ts). */
export const inferenceRoutes = new Hono<AppBindings>()
  .post("/generate", (c) => relayInference(c, "generate"))
  .post("/chat", (c) => relayInference(c, "chat"))
  .post("/embed", (c) => relayInference(c, "embed"))
  // The legacy single-prompt endpoint.
  .post("/embeddings", (c) => relayInference(c, "embeddings"));
