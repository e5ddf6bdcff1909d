import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const repoRoot = resolve(import.meta.dirname, "..");

export interface RunningStack {
  url: string;
  key: string;
  adminKey: string;
  stateDir: string;
  runnerPorts: number[];
  /** The launcher (scripts/start.ts), leader of its own process group; the edge and runners have their own groups. */
  pid: number;
  output: () => string;
  stop: () => Promise<void>;
}

const portFree = (port: number) =>
  new Promise<boolean>((res) => {
    const s = createServer();
    s.once("error", () => res(false));
    s.listen(port, "127.0.0.1", () => s.close(() => res(true)));
  });

/**
 * The stack uses PORT (edge), PORT+1..PORT+runners (runners) and PORT+1000 (inspector): all must be free. They are
 * checked here and bound later, so the block stays below Linux's ephemeral range (32768+), where every outgoing
 * connection (the tests' own fetches, docker-registry, workerd) takes its local port and could take one of ours
 * in between.
 */
async function freePortBlock(runners: number): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 11000);
    const wanted = [port, port + 1000, ...Array.from({ length: runners }, (_, i) => port + 1 + i)];
    const free = await Promise.all(wanted.map(portFree));
    if (free.every(Boolean)) return port;
  }
}

/**
 * Starts the stack as `npm start` does (same script), in a throwaway state dir, and waits for its banner. Node runs
 * start.ts with tsx's loader rather than through the tsx CLI, whose wrapper process would lead the group: killing
 * that wrapper leaves start.ts running, and tests that kill the launcher mean start.ts. `stateDir` reuses one (a
 * restart); stop() removes it either way.
 */
export async function startStack(
  opts: { runners?: number; env?: NodeJS.ProcessEnv; stateDir?: string } = {},
): Promise<RunningStack> {
  const runners = opts.runners ?? 1;
  const port = await freePortBlock(runners);
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), "corral-stack-"));
  const key = `corral-test-${randomBytes(16).toString("hex")}`;
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    cwd: repoRoot,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      PORT: String(port),
      RUNNERS: String(runners),
      CORRAL_DEV_KEY: key,
      CORRAL_STATE_DIR: stateDir,
      CORRAL_QUIET: "1",
      THREADS: "1",
      ...opts.env,
    },
  });
  let out = "";
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  const ready = new Promise<void>((res, rej) => {
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes("corral is ready")) res();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    void exited.then(() => rej(new Error(`stack exited before it was ready:\n${out}`)));
  });
  const timeout = setTimeout(() => child.pid && process.kill(-child.pid, "SIGTERM"), 180_000);
  const stop = async () => {
    // A test may have killed the launcher already; its group is then gone (ESRCH).
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
    }
    await exited;
    rmSync(stateDir, { recursive: true, force: true });
  };
  try {
    await ready;
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timeout);
  }
  const adminKey = /admin key:\s+(\S+)/.exec(out)?.[1] ?? "";
  return {
    url: `http://127.0.0.1:${port}`,
    key,
    adminKey,
    stateDir,
    runnerPorts: Array.from({ length: runners }, (_, i) => port + 1 + i),
    pid: child.pid ?? 0,
    output: () => out,
    stop,
  };
}
