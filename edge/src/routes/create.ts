import { Hono } from "hono";
import type { AppBindings } from "../env";

export const createRoutes = new Hono<AppBindings>();
