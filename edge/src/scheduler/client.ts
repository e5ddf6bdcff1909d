import type { Env } from "../env";

/** The fleet has one scheduler: every isolate talks to the same instance. */
export const SCHEDULER_NAME = "global";

export const schedulerStub = (env: Pick<Env, "SCHEDULER">) =>
  env.SCHEDULER.get(env.SCHEDULER.idFromName(SCHEDULER_NAME));

/** Operators: stop (or resume) sending new work to a runner; it finishes its streams. False for an unknown id. */
export const drainRunner = (env: Pick<Env, "SCHEDULER">, runnerId: string, draining = true): Promise<boolean> =>
  schedulerStub(env).drain(runnerId, draining);
