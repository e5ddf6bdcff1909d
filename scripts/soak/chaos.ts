/**
 * The soak suite's faults, on the local stack's real processes: a runner stopped (SIGSTOP) then resumed (SIGCONT),
 * the edge restarted alone (SIGUSR2 to the launcher, scripts/start.ts), a runner killed (SIGKILL). Runner 0 is never
 * touched, so the fleet always has a runner that comes back.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface ChaosEvent {
  at_s: number;
  what: string;
  ok: boolean;
  detail?: string;
}

export interface ChaosTarget {
  stateDir: string;
  /** The launcher's pid (scripts/start.ts). */
  launcherPid: number;
  /** How many times the launcher has printed "edge restarted". */
  edgeRestarts: () => number;
}

const runnerGroups = (stateDir: string) =>
  (JSON.parse(readFileSync(join(stateDir, "runners.json"), "utf8")) as { runners: { id: string; pid: number }[] })
    .runners;

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  process.kill(-pid, signal);
}

async function until(condition: () => boolean, deadlineMs: number): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
  return true;
}

/**
 * Runs the faults at fixed fractions of the soak: stop runner 1 at 15 % and resume it at 30 %, restart the edge
 * at 45 %, kill runner 1 at 70 %. Resolves when all have run (or the soak ends); the list says what happened when.
 */
export async function runChaos(target: ChaosTarget, seconds: number, signal: AbortSignal): Promise<ChaosEvent[]> {
  const events: ChaosEvent[] = [];
  const started = Date.now();
  const victim = runnerGroups(target.stateDir)[1];
  const at = async (fraction: number) => {
    const wait = started + fraction * seconds * 1000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    return !signal.aborted;
  };
  const note = (what: string, act: () => void | Promise<void>) =>
    Promise.resolve()
      .then(act)
      .then(
        () => events.push({ at_s: Math.round((Date.now() - started) / 1000), what, ok: true }),
        (err: unknown) =>
          events.push({ at_s: Math.round((Date.now() - started) / 1000), what, ok: false, detail: String(err) }),
      );
  let stopped = false;
  try {
    if (victim && (await at(0.15))) {
      await note(`SIGSTOP runner ${victim.id}`, () => signalGroup(victim.pid, "SIGSTOP"));
      stopped = true;
    }
    if (victim && (await at(0.3))) {
      await note(`SIGCONT runner ${victim.id}`, () => signalGroup(victim.pid, "SIGCONT"));
      stopped = false;
    }
    if (await at(0.45)) {
      const before = target.edgeRestarts();
      await note("edge restarted (SIGUSR2 to the launcher)", async () => {
        process.kill(target.launcherPid, "SIGUSR2");
        if (!(await until(() => target.edgeRestarts() > before, 120_000))) throw new Error("edge did not come back");
      });
    }
    if (victim && (await at(0.7))) await note(`SIGKILL runner ${victim.id}`, () => signalGroup(victim.pid, "SIGKILL"));
  } finally {
    // Never leave a stopped runner behind, whatever ended the soak.
    if (stopped && victim) signalGroup(victim.pid, "SIGCONT");
  }
  return events;
}
