import { Hono } from "hono";
import type { AppBindings } from "../env";

export const deleteRoutes = new Hono<AppBindings>();
