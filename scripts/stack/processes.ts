import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

/**
 * Starts a child in its own process group so that stopping it also stops what it spawned (wrangler → workerd).
 * Output goes to a log file and, prefixed, to our stdout when `echo` is set.
 */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd: string; logFile: string; echo: boolean },
): ManagedProcess {
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = createWriteStream(opts.logFile, { flags: "a" });
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on("data", (chunk: Buffer) => {
      log.write(chunk);
      if (opts.echo) {
        for (const line of chunk.toString().split("\n")) if (line.trim()) process.stdout.write(`[${name}] ${line}\n`);
      }
    });
  }
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { name, child, exited };
}

/** SIGTERM to the whole group, SIGKILL if it has not gone within the grace period. */
export async function stopProcess(p: ManagedProcess, graceMs = 5000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null || p.child.pid === undefined) return;
  const pid = p.child.pid;
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      // Already gone.
    }
  };
  signalGroup("SIGTERM");
  const timer = setTimeout(() => signalGroup("SIGKILL"), graceMs);
  await p.exited;
  clearTimeout(timer);
  // Children of the group (workerd) may outlive the leader for a moment.
  signalGroup("SIGKILL");
}

export async function waitForHttp(url: string, timeoutMs: number, isUp: (r: Response) => boolean = (r) => r.ok) {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (isUp(res)) return;
      lastError = new Error(`HTTP ${res.status}`);
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not come up within ${timeoutMs} ms: ${String(lastError)}`);
}
