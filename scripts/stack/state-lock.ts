/**
 * One `npm start` per state directory: two stacks on the same local D1 files both fail later with
 * `database is locked: SQLITE_BUSY`, so the second one is refused at once, naming the first. The lock is a file in
 * the state dir holding the owner's pid, port and URL; a lock whose owner is gone (killed with SIGKILL, machine
 * rebooted) is stale and taken over.
 */
import { linkSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const LOCK_FILE = "corral.lock";

export interface StackLock {
  pid: number;
  port: number;
  url: string;
  started_at: string;
  /** The owner's start time in clock ticks since boot (Linux /proc): a reused pid does not look like the owner. */
  proc_start?: string;
}

/** Field 22 of /proc/<pid>/stat; undefined where /proc is absent (macOS) or the process is gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote the lock still runs (and is the same process, where /proc can tell). */
export function lockOwnerAlive(lock: StackLock): boolean {
  try {
    process.kill(lock.pid, 0);
  } catch (err) {
    // EPERM: a process of another user holds the pid, so it is alive (not ours to judge further).
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (lock.proc_start === undefined) return true;
  const now = processStartTime(lock.pid);
  return now === undefined || now === lock.proc_start;
}

export class StateDirInUse extends Error {
  constructor(
    readonly stateDir: string,
    readonly owner: StackLock,
  ) {
    super(
      `another corral is already running on ${stateDir}: pid ${owner.pid}, port ${owner.port}, ${owner.url} ` +
        `(started ${owner.started_at}). Stop it (kill ${owner.pid}) or start this one with another ` +
        "CORRAL_STATE_DIR.",
    );
  }
}

function readLock(path: string): StackLock | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as Partial<StackLock>;
    return typeof parsed.pid === "number" && Number.isInteger(parsed.pid) && parsed.pid > 0
      ? (parsed as StackLock)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the state dir's lock for this process or throws StateDirInUse. The lock is written whole to a file of its
 * own and then hard-linked into place, which fails if the lock exists: of two launchers racing for a free dir exactly
 * one wins, and nobody ever reads a half-written lock. A stale or unreadable lock is removed and linking retried.
 * Returns the release function (idempotent; removes the file only while it is still this process's).
 */
export function acquireStateLock(stateDir: string, owner: { port: number; url: string }): () => void {
  const path = join(stateDir, LOCK_FILE);
  const mine: StackLock = {
    pid: process.pid,
    port: owner.port,
    url: owner.url,
    started_at: new Date().toISOString(),
    proc_start: processStartTime(process.pid),
  };
  const draft = `${path}.${process.pid}`;
  writeFileSync(draft, `${JSON.stringify(mine, null, 2)}\n`);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(draft, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 3) throw err;
      }
      const held = readLock(path);
      if (held && held.pid !== process.pid && lockOwnerAlive(held)) throw new StateDirInUse(stateDir, held);
      rmSync(path, { force: true });
    }
  } finally {
    rmSync(draft, { force: true });
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (readLock(path)?.pid === process.pid) rmSync(path, { force: true });
  };
}
