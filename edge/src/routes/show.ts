import { showRequestSchema } from "@corral/protocol";
import { Hono } from "hono";
import { readRequest } from "../body";
import type { AppBindings } from "../env";
import { showModel } from "../store/show";

export const showRoutes = new Hono<AppBindings>().post("/show", async (c) => {
  const request = await readRequest(c, showRequestSchema);
  return c.json(await showModel(c.env, c.get("tenantId"), request));
});
