import { Hono } from "hono";
import type { AppBindings } from "../env";
import { relayInference } from "../relay/relay";

export const generateRoutes = new Hono<AppBindings>().post("/generate", (c) => relayInference(c, "generate"));
