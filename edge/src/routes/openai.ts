import { Hono } from "hono";
import type { AppBindings } from "../env";

export const openaiRoutes = new Hono<AppBindings>();
