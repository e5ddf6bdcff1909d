import { Hono } from "hono";
import type { AppBindings } from "../env";

export const generateRoutes = new Hono<AppBindings>();
