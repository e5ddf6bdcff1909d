import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

/** Knows the runners and decides which one serves a request. Filled in by the inference and fleet work. */
export class Scheduler extends DurableObject<Env> {}
