import { Hono } from "hono";
import type { AppBindings } from "../env";

export const pullRoutes = new Hono<AppBindings>();
