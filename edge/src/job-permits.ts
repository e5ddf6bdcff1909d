/**
 * Concurrent pulls, pushes, creates and quantize jobs per tenant: each kind counts in its own TenantLimiter
 * instance (`<tenant>/jobs/<kind>`), bounded by the tenant's limits (edge/src/bounds.ts). Crossing one is a 429
 * naming the bound, before the job starts; the permit is released when the job's progress ends however it ends
 * (done, failed, client gone), and a permit never released expires with the limiter's STALE_PERMIT_MS.
 */
import { ApiError } from "@corral/protocol";
import type { RequestLimits } from "./bounds";
import type { Env } from "./env";
import { limiterStub } from "./scheduler/limiter";

export type JobKind = "pull" | "push" | "create" | "quantize";

const LIMIT_OF: Record<JobKind, keyof RequestLimits> = {
  pull: "concurrent_pulls",
  push: "concurrent_pushes",
  create: "concurrent_creates",
  quantize: "concurrent_quantize",
};

export interface JobPermit {
  /** Idempotent. */
  release(): void;
}

/** One permit per kind, all or none; throws 429 naming the first bound crossed. */
export async function acquireJobPermits(
  env: Pick<Env, "LIMITER">,
  tenantId: string,
  kinds: JobKind[],
  limits: RequestLimits,
  waitUntil: (promise: Promise<unknown>) => void,
): Promise<JobPermit> {
  const id = crypto.randomUUID();
  const held: JobKind[] = [];
  const release = () => {
    for (const kind of held.splice(0)) {
      waitUntil(
        limiterStub(env, `${tenantId}/jobs/${kind}`)
          .release(id)
          .catch(() => {}),
      );
    }
  };
  for (const kind of kinds) {
    const limit = limits[LIMIT_OF[kind]];
    const result = await limiterStub(env, `${tenantId}/jobs/${kind}`).acquire(id, {
      requests_per_minute: null,
      concurrent_requests: limit,
    });
    if (!result.ok) {
      release();
      throw new ApiError(429, `too many concurrent ${kind} jobs: this tenant may run ${limit} at a time`);
    }
    held.push(kind);
  }
  return { release };
}

/** The job's progress, releasing `permit` when it ends, however it ends. */
export async function* releasingWhenDone<T>(job: AsyncGenerator<T, void, undefined>, permit: JobPermit) {
  try {
    yield* job;
  } finally {
    permit.release();
  }
}
