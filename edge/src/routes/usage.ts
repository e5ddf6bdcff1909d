import { ApiError } from "@corral/protocol";
import { Hono } from "hono";
import { usageSummary } from "../db/usage";
import type { AppBindings } from "../env";

/** A tenant's own usage, by UTC day and model; `since` / `until` are ISO dates or times (until is exclusive). */
export const usageRoutes = new Hono<AppBindings>().get("/usage", async (c) => {
  const since = c.req.query("since");
  const until = c.req.query("until");
  for (const [name, value] of [
    ["since", since],
    ["until", until],
  ] as const) {
    if (value !== undefined && Number.isNaN(Date.parse(value))) {
      throw new ApiError(400, `invalid ${name}: expected an ISO 8601 date or time`);
    }
  }
  return c.json(await usageSummary(c.env.DB, c.get("tenantId"), since, until));
});
