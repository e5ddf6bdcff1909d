import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { PARENT_PID_ENV, processAlive, watchParent } from "./parent-watch";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` holds or a generous time bound passes (a loaded CI machine runs timers late). */
async function until(check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await sleep(5);
}

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid!;
}

describe("processAlive", () => {
  it("tells a live process from an exited one", async () => {
    expect(processAlive(process.pid)).toBe(true);
    expect(processAlive(await deadPid())).toBe(false);
  });
});

describe("watchParent", () => {
  it.each([
    { name: "unset", value: undefined },
    { name: "empty", value: "" },
    { name: "not a number", value: "launcher" },
    { name: "zero", value: "0" },
    { name: "negative (a process group)", value: "-12" },
  ])("does not watch when CORRAL_PARENT_PID is $name", ({ value }) => {
    const env = value === undefined ? {} : { [PARENT_PID_ENV]: value };
    expect(
      watchParent(
        env,
        () => {},
        10,
        () => false,
      ),
    ).toBeUndefined();
  });

  it("calls onGone once after the parent exits, not while it lives", async () => {
    let alive = true;
    const checked: number[] = [];
    let gone = 0;
    const stop = watchParent(
      { [PARENT_PID_ENV]: "4242" },
      () => gone++,
      5,
      (pid) => {
        checked.push(pid);
        return alive;
      },
    );
    expect(stop).toBeTypeOf("function");
    await until(() => checked.length >= 3);
    expect(checked.length).toBeGreaterThanOrEqual(3);
    expect(gone).toBe(0);
    alive = false;
    await until(() => gone > 0);
    // A negative check: a second call would show up here; a slow machine can only hide it, not fail the test.
    await sleep(30);
    expect(gone).toBe(1);
    expect(new Set(checked)).toEqual(new Set([4242]));
    stop?.();
  });

  it("notices a real process that exited", async () => {
    const pid = await deadPid();
    let gone = false;
    watchParent({ [PARENT_PID_ENV]: String(pid) }, () => (gone = true), 5);
    await until(() => gone);
    expect(gone).toBe(true);
  });

  it("stops checking once stopped", async () => {
    let checks = 0;
    const stop = watchParent(
      { [PARENT_PID_ENV]: "4242" },
      () => {},
      5,
      () => {
        checks++;
        return true;
      },
    );
    await until(() => checks > 0);
    expect(checks).toBeGreaterThan(0);
    stop?.();
    const seen = checks;
    // A negative check: a check after stop would show up here; a slow machine can only hide it.
    await sleep(40);
    expect(checks).toBe(seen);
  });
});
