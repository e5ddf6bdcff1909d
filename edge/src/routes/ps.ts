import { Hono } from "hono";
import type { AppBindings } from "../env";

export const psRoutes = new Hono<AppBindings>();
