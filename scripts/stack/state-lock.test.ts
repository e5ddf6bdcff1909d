import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { acquireStateLock, LOCK_FILE, processStartTime, type StackLock, StateDirInUse } from "./state-lock";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "corral-lock-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const lockPath = () => join(dir, LOCK_FILE);
const writeLock = (lock: Partial<StackLock> | string) =>
  writeFileSync(lockPath(), typeof lock === "string" ? lock : JSON.stringify(lock));
const readLock = () => JSON.parse(readFileSync(lockPath(), "utf8")) as StackLock;

/** Another live process (the other `npm start`), stopped by the returned function. */
async function otherProcess(): Promise<{ pid: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  await new Promise((r) => child.once("spawn", r));
  const exited = new Promise((r) => child.once("exit", r));
  return {
    pid: child.pid ?? 0,
    stop: async () => {
      child.kill("SIGKILL");
      await exited;
    },
  };
}

describe("acquireStateLock", () => {
  it("takes a free state dir and names this process, its port and URL in the lock", () => {
    const release = acquireStateLock(dir, { port: 11434, url: "http://127.0.0.1:11434" });
    expect(readLock()).toMatchObject({ pid: process.pid, port: 11434, url: "http://127.0.0.1:11434" });
    release();
    expect(existsSync(lockPath())).toBe(false);
    expect(() => release()).not.toThrow();
  });

  it("refuses a state dir another live stack holds, naming its pid, port and URL", async () => {
    const other = await otherProcess();
    try {
      writeLock({ pid: other.pid, port: 20001, url: "http://127.0.0.1:20001", started_at: "then" });
      let refused: unknown;
      try {
        acquireStateLock(dir, { port: 20002, url: "http://127.0.0.1:20002" });
      } catch (err) {
        refused = err;
      }
      expect(refused).toBeInstanceOf(StateDirInUse);
      const message = (refused as Error).message;
      for (const part of [`pid ${other.pid}`, "port 20001", "http://127.0.0.1:20001"]) expect(message).toContain(part);
      expect(readLock().pid).toBe(other.pid);
    } finally {
      await other.stop();
    }
  });

  // Each case leaves a lock behind that must not block: its owner is gone or it is not a lock at all.
  const stale: [string, () => Promise<Partial<StackLock> | string>][] = [
    [
      "a killed owner (SIGKILL: no cleanup)",
      async () => {
        const other = await otherProcess();
        await other.stop();
        return { pid: other.pid, port: 1, url: "http://127.0.0.1:1" };
      },
    ],
    ["an unreadable lock", async () => "{half"],
    ["a lock without a pid", async () => ({ port: 1 })],
  ];
  it.each(stale)("takes over a stale lock: %s", async (_, lock) => {
    writeLock(await lock());
    const release = acquireStateLock(dir, { port: 3, url: "http://127.0.0.1:3" });
    expect(readLock()).toMatchObject({ pid: process.pid, port: 3 });
    release();
  });

  // Only where /proc tells a process's start time (Linux); elsewhere a live pid counts as the owner.
  it.skipIf(processStartTime(process.pid) === undefined)(
    "takes over a lock whose pid another process now has",
    async () => {
      const other = await otherProcess();
      try {
        writeLock({ pid: other.pid, port: 1, url: "u", proc_start: "1" });
        const release = acquireStateLock(dir, { port: 3, url: "http://127.0.0.1:3" });
        expect(readLock()).toMatchObject({ pid: process.pid, port: 3 });
        release();
      } finally {
        await other.stop();
      }
    },
  );

  it("release leaves a lock that another stack has since taken", () => {
    const release = acquireStateLock(dir, { port: 4, url: "u" });
    writeLock({ pid: 1, port: 5, url: "v" });
    release();
    expect(readLock().port).toBe(5);
  });
});
