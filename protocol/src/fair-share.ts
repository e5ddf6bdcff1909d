/**
 * The fair-share rule for unloading, one definition for the two places that apply it: the scheduler when it picks
 * a runner (edge/src/scheduler/placement.ts) and the runner when it makes room (gpu-runner/src/model-pool.ts).
 *
 * A tenant's load may unload idle models it used last itself, or whose last user is not known, in the caller's
 * order; other tenants' idle models only while its own models on that runner plus the incoming one stay within its
 * fair share: the runner's memory divided by the tenants with models there (itself included). A tenant's long
 * contexts therefore push out its own models first, and another tenant's only up to an equal split.
 */

export interface ResidentModel {
  /** Bytes the model holds on the runner. */
  size: number;
  /** The tenant whose request used it last; undefined when not known. */
  tenant?: string | undefined;
  /** No request is using it (or waiting for it): unloading it hurts nobody now. */
  idle: boolean;
}

/**
 * The models `tenant`'s load of `incomingBytes` may unload on a runner of `memoryTotal` bytes, its own (and
 * unknown users') first, each group in the order given. Without a tenant every idle model may go (no rule to apply).
 */
export function fairVictims<M extends ResidentModel>(
  resident: readonly M[],
  tenant: string | undefined,
  memoryTotal: number,
  incomingBytes: number,
): M[] {
  const idle = resident.filter((m) => m.idle);
  if (tenant === undefined) return idle;
  const users = new Set<string>([tenant]);
  let used = 0;
  for (const m of resident) {
    if (m.tenant !== undefined) users.add(m.tenant);
    if (m.tenant === tenant) used += m.size;
  }
  const own = idle.filter((m) => m.tenant === undefined || m.tenant === tenant);
  const withinShare = used + incomingBytes <= memoryTotal / users.size;
  return withinShare ? [...own, ...idle.filter((m) => !own.includes(m))] : own;
}
