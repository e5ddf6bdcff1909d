import type { RequestLimits } from "./bounds";
import type { Quotas } from "./db/tenants";
import type { RunnerNetwork } from "./relay/transport";
import type { TenantLimiter } from "./scheduler/limiter";
import type { Scheduler } from "./scheduler/scheduler";

export interface Env {
  DB: D1Database;
  BLOBS: R2Bucket;
  SCHEDULER: DurableObjectNamespace<Scheduler>;
  LIMITER: DurableObjectNamespace<TenantLimiter>;
  /** Admin API secret (Worker secret; .dev.vars locally). */
  ADMIN_KEY?: string;
  /** Shared secret between edge and runners. */
  RUNNER_SECRET?: string;
  /**
   * Workers VPC network binding to the runners' private network (production, infra/README.md). Unbound in the local
   * stack, where runners are fetched at their registered URL directly (relay/transport.ts).
   */
  RUNNER_NETWORK?: RunnerNetwork;
  CORRAL_VERSION: string;
  /** How long a runner may send nothing during a job before the edge gives it up (ms; store/runner-jobs.ts). */
  RUNNER_JOB_SILENCE_MS?: string;
  ALLOW_PRIVATE_REGISTRIES?: string;
}

/** What the auth middleware puts on the context for tenant routes. */
export interface TenantVars {
  tenantId: string;
  keyId: string;
  /** The tenant's quotas as of authentication (at most a few seconds old, see db/key-cache.ts). */
  quotas: Quotas;
  /** The tenant's request bounds, read with the quotas (edge/src/bounds.ts). */
  limits: RequestLimits;
}

/** Set by the internal pipeline for endpoints that relax `think` (RunnerInferenceRequest.relax_thinking). */
export interface PipelineVars {
  relaxThinking?: boolean;
}

export type AppBindings = { Bindings: Env; Variables: TenantVars & PipelineVars };
