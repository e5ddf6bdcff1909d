import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

/** Per-tenant rate and concurrency limits, held across isolates. Filled in by the fleet work. */
export class TenantLimiter extends DurableObject<Env> {}
