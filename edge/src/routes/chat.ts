import { Hono } from "hono";
import type { AppBindings } from "../env";

export const chatRoutes = new Hono<AppBindings>();
