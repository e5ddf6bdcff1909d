import { Hono } from "hono";
import type { AppBindings } from "../env";

export const usageRoutes = new Hono<AppBindings>();
