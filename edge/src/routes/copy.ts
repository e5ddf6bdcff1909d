import { Hono } from "hono";
import type { AppBindings } from "../env";

export const copyRoutes = new Hono<AppBindings>();
