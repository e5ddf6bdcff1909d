import { Hono } from "hono";
import type { AppBindings } from "../env";

export const pushRoutes = new Hono<AppBindings>();
