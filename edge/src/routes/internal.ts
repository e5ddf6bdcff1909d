import { Hono } from "hono";
import type { AppBindings } from "../env";

export const internalRoutes = new Hono<AppBindings>();
