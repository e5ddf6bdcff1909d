/**
 * The runner as a process, started the way the local stack starts it: environment in, one line on stdout when
 * listening, heartbeats to the edge, and a SIGTERM that lets a running stream finish before exiting.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RunnerStatus } from "@corral/protocol/runner";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BlobServer, resolvedModel, startBlobServer, TEST_SECRET, tinyModelBlob } from "./test-support";

let edge: BlobServer;
let dir: string;
let child: ChildProcess | undefined;

beforeAll(async () => {
  edge = await startBlobServer([tinyModelBlob()]);
  dir = await mkdtemp(join(tmpdir(), "corral-main-"));
});
afterAll(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  await edge.close();
  await rm(dir, { recursive: true, force: true });
});

describe("gpu-runner process", () => {
  // A whole process (node, tsx, llama.cpp) and a long stream: more than the unit default on a loaded machine.
  it("listens, heartbeats, and drains on SIGTERM", async () => {
    child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "main.ts")], {
      env: {
        ...process.env,
        RUNNER_SECRET: TEST_SECRET,
        EDGE_URL: edge.url,
        PORT: "0",
        RUNNER_ID: "proc-test",
        RUNNER_URL: "http://127.0.0.1:1",
        CACHE_DIR: dir,
        THREADS: "1",
        PARALLEL: "1",
        GPU: "false",
        NUM_CTX: "2048",
        HEARTBEAT_INTERVAL_MS: "200",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk) => (stdout += chunk));
    child.stderr!.on("data", (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child!.on("exit", (code) => resolve(code)));

    // Waits for the line itself (or the exit), not a number of polls: a loaded machine starts node + tsx slowly.
    const listening = /listening on http:\/\/127\.0\.0\.1:(\d+)/;
    const port = await new Promise<string | undefined>((resolve) => {
      const check = () => {
        const found = listening.exec(stdout)?.[1];
        if (found) resolve(found);
      };
      child!.stdout!.on("data", check);
      void exited.then(() => resolve(listening.exec(stdout)?.[1]));
      check();
    });
    expect(port, stderr).toBeDefined();
    expect(stdout.trim().split("\n")).toHaveLength(1);
    for (const deadline = Date.now() + 60_000; edge.heartbeats.length === 0 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(edge.heartbeats[0]).toMatchObject({ id: "proc-test", url: "http://127.0.0.1:1", draining: false });

    const res = await fetch(`http://127.0.0.1:${port}/v1/generate`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_SECRET}` },
      body: JSON.stringify({
        request_id: "drain",
        model: resolvedModel(tinyModelBlob(), "tiny"),
        // Greedy on "story 44" runs past a thousand tokens: the stream is still going when SIGTERM lands, even
        // when this process reads its first chunk late on a loaded machine.
        request: { model: "tiny", prompt: "story 44", options: { num_predict: 1200, temperature: 0 } },
      }),
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value);
    expect(text).not.toContain('"done":true');
    child.kill("SIGTERM");
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    const last = JSON.parse(text.trim().split("\n").at(-1)!);
    // The stream ran to its own end after SIGTERM (the gibberish model may sample its end token early).
    expect(last.done).toBe(true);
    expect(["stop", "length"]).toContain(last.done_reason);
    expect(text.trim().split("\n").length).toBeGreaterThan(2);
    expect(await exited).toBe(0);
    const final = edge.heartbeats.at(-1) as RunnerStatus;
    expect(final.draining).toBe(true);
  }, 180_000);
});
