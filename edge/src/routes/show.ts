import { Hono } from "hono";
import type { AppBindings } from "../env";

export const showRoutes = new Hono<AppBindings>();
