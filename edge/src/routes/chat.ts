import { Hono } from "hono";
import type { AppBindings } from "../env";
import { relayInference } from "../relay/relay";

export const chatRoutes = new Hono<AppBindings>().post("/chat", (c) => relayInference(c, "chat"));
