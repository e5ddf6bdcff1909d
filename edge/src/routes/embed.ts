import { Hono } from "hono";
import type { AppBindings } from "../env";

export const embedRoutes = new Hono<AppBindings>();
