import { Hono } from "hono";
import type { AppBindings } from "../env";

export const blobsRoutes = new Hono<AppBindings>();
