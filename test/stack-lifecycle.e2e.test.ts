/**
 * The local stack's processes: a launcher (scripts/start.ts) killed with SIGKILL cannot stop its children, so the
 * edge and each runner watch it (CORRAL_PARENT_PID) and stop by themselves rather than live on holding their ports.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type RunningStack, repoRoot, startStack } from "./harness";
import { eventually } from "./inference-support";

/**
 * Any HTTP answer counts (the runner's `/` is a 401/404); only a refused or hung connection does not. "Hung" is
 * generous: a live process on a loaded machine can take seconds to answer, and must not count as down.
 */
async function answers(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return true;
  } catch {
    return false;
  }
}

/** A second launcher (start.ts) on a state dir, run to its exit: its code and output. */
async function secondLauncher(stateDir: string, port: number): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PORT: String(port), CORRAL_STATE_DIR: stateDir, CORRAL_QUIET: "1" },
  });
  let output = "";
  child.stdout?.on("data", (b: Buffer) => (output += b.toString()));
  child.stderr?.on("data", (b: Buffer) => (output += b.toString()));
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  return { code, output };
}

describe("one launcher per state dir; a launcher killed with SIGKILL", () => {
  let stack: RunningStack | undefined;
  let restarted: RunningStack | undefined;
  let runnerGroups: number[] = [];
  let leftBehind = true;

  afterAll(async () => {
    // Only if the test failed: do not leave runners behind for the files after this one.
    if (leftBehind) {
      for (const pid of runnerGroups) {
        try {
          process.kill(-pid, "SIGKILL");
        } catch {}
      }
    }
    await restarted?.stop();
    await stack?.stop();
  });

  // The test starts its own stack (startStack allows it 180 s), then waits for it to go: more than the default.
  it("refuses a second launcher; killed, leaves nothing answering and a stale lock a new stack takes", async () => {
    stack = await startStack({ runners: 2 });
    const { runners } = JSON.parse(readFileSync(join(stack.stateDir, "runners.json"), "utf8")) as {
      runners: { port: number; pid: number }[];
    };
    runnerGroups = runners.map((r) => r.pid);
    expect(runners.map((r) => r.port)).toEqual(stack.runnerPorts);
    const urls = [`${stack.url}/`, ...runners.map((r) => `http://127.0.0.1:${r.port}/`)];
    for (const url of urls) expect(await answers(url)).toBe(true);

    // A second `npm start` on the same state dir (another port) is refused before it touches D1, naming the first.
    const launcherPort = Number(new URL(stack.url).port);
    const second = await secondLauncher(stack.stateDir, launcherPort + 500);
    expect(second.code).toBe(1);
    for (const part of [`pid ${stack.pid}`, `port ${launcherPort}`, stack.url]) expect(second.output).toContain(part);
    expect(await answers(`${stack.url}/`)).toBe(true);

    // The launcher alone: its children lead process groups of their own, which this signal does not reach.
    process.kill(stack.pid, "SIGKILL");

    const allDown = async () => !(await Promise.all(urls.map(answers))).some(Boolean);
    // Each watches its parent once a second, then shuts down: later on a loaded machine.
    leftBehind = !(await eventually(allDown, 60_000, 250));
    expect(leftBehind).toBe(false);

    // The killed launcher's lock is left behind, stale: it does not block a new stack on the same state dir.
    restarted = await startStack({ stateDir: stack.stateDir });
    expect(await answers(`${restarted.url}/`)).toBe(true);
  }, 300_000);
});
