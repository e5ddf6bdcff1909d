import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Worker } from "node:worker_threads";
import { type RunnerStatus, RunnerStatusSchema } from "@corral/protocol/runner";
import { afterEach, describe, expect, it } from "vitest";
import { Heartbeat } from "./heartbeat";

const status: RunnerStatus = {
  id: "r1",
  url: "http://127.0.0.1:11435",
  slots: 4,
  busy_slots: 1,
  memory_total: 100,
  memory_free: 50,
  loaded: [],
  draining: false,
};

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

type Answer = { status: number; body: unknown };

async function fakeEdge(answer: (n: number) => Answer | Promise<Answer>) {
  const received: { auth?: string; body: unknown }[] = [];
  server = createServer(async (req, res) => {
    let text = "";
    for await (const chunk of req) text += chunk;
    received.push({ auth: req.headers.authorization, body: JSON.parse(text) });
    const { status: code, body } = await answer(received.length);
    res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

/** Polls until `check` holds; bounded by time (generous: a loaded CI machine is slow, a passing check is not). */
const until = async (check: () => boolean, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(check()).toBe(true);
};

describe("Heartbeat", () => {
  it("posts the status with the secret, repeats, and passes on draining", async () => {
    const edge = await fakeEdge((n) => ({ status: 200, body: { ok: true, draining: n >= 2 } }));
    const draining: boolean[] = [];
    const beat = new Heartbeat({
      edgeUrl: edge.url,
      secret: "s3cret",
      intervalMs: 20,
      status: () => status,
      onDraining: (d) => draining.push(d),
      log: () => {},
    });
    beat.start();
    await until(() => edge.received.length >= 3);
    await beat.stop();
    expect(edge.received[0]!.auth).toBe("Bearer s3cret");
    expect(RunnerStatusSchema.parse(edge.received[0]!.body)).toEqual(status);
    expect(draining.slice(0, 2)).toEqual([false, true]);
  });

  it("checks the status with the edge's reader before sending: rounds fractions, drops bad entries, logs once", async () => {
    const edge = await fakeEdge(() => ({ status: 200, body: { ok: true, draining: false } }));
    const logs: string[] = [];
    const bad = { model_blob: "sha256:x", size: 1.5 } as unknown as RunnerStatus["loaded"][number];
    const beat = new Heartbeat({
      edgeUrl: edge.url,
      secret: "s",
      intervalMs: 20,
      status: () => ({ ...status, memory_free: 19482724386.6, loaded: [bad] }),
      log: (line) => logs.push(line),
    });
    beat.start();
    await until(() => edge.received.length >= 3);
    await beat.stop();
    expect(RunnerStatusSchema.parse(edge.received[0]!.body)).toEqual({ ...status, memory_free: 19482724386 });
    expect(logs.filter((line) => line.startsWith("heartbeat: status repaired"))).toEqual([
      expect.stringMatching(/memory_free: 19482724386\.6 is not a whole number.*loaded\.0\.size/),
    ]);
  });

  it("a trigger during a beat sends one more right after it", async () => {
    const edge = await fakeEdge(() => ({ status: 200, body: { ok: true, draining: false } }));
    const beat = new Heartbeat({
      edgeUrl: edge.url,
      secret: "s",
      intervalMs: 60_000,
      status: () => status,
      log: () => {},
    });
    beat.start();
    beat.trigger();
    beat.trigger();
    await until(() => edge.received.length >= 2);
    // A negative check: a third beat would show up here; a slow machine can only hide it, not fail the test.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await beat.stop();
    expect(edge.received).toHaveLength(2);
  });

  it("logs an unreachable edge once, and recovery once", async () => {
    let up = false;
    const edge = await fakeEdge(() => (up ? { status: 200, body: { ok: true } } : { status: 503, body: {} }));
    const logs: string[] = [];
    const beat = new Heartbeat({
      edgeUrl: edge.url,
      secret: "s",
      intervalMs: 10,
      status: () => status,
      log: (m) => logs.push(m),
    });
    beat.start();
    await until(() => edge.received.length >= 3);
    up = true;
    await until(() => beat.accepted >= 1);
    await beat.stop();
    expect(logs).toHaveLength(2);
    expect(logs[0]).toMatch(/unreachable \(HTTP 503\)/);
    expect(logs[1]).toMatch(/registered/);
  });

  describe("pulse", () => {
    const empty: RunnerStatus = { ...status, loaded: [] };
    const loadedBlob = (body: unknown) => (body as RunnerStatus).loaded.map((m) => m.model_blob);
    const model = {
      model_blob: "sha256:ab",
      size: 1,
      size_vram: 0,
      context_length: 16,
      expires_at: "2030-01-01T00:00:00.000Z",
      busy_sequences: 0,
      sequences: 1,
    };

    it("resolves once the edge answered a beat sent after the call, even with an older beat in flight", async () => {
      let releaseFirst!: () => void;
      const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
      const edge = await fakeEdge(async (n) => {
        if (n === 1) await firstHeld;
        return { status: 200, body: { ok: true } };
      });
      let current = empty;
      const beat = new Heartbeat({
        edgeUrl: edge.url,
        secret: "s",
        intervalMs: 60_000,
        status: () => current,
        log: () => {},
      });
      beat.start();
      await until(() => edge.received.length === 1);
      current = { ...empty, loaded: [model] };
      let pulsed = false;
      const pulse = beat.pulse(10_000).then(() => (pulsed = true));
      await new Promise((resolve) => setTimeout(resolve, 30));
      // The beat in flight predates the change: its answer must not end the pulse.
      expect(pulsed).toBe(false);
      releaseFirst();
      await pulse;
      await beat.stop();
      expect(edge.received.map((r) => loadedBlob(r.body))).toEqual([[], ["sha256:ab"]]);
      expect(beat.accepted).toBe(2);
    });

    it("coalesces concurrent pulses into one beat", async () => {
      const edge = await fakeEdge(() => ({ status: 200, body: { ok: true } }));
      const beat = new Heartbeat({
        edgeUrl: edge.url,
        secret: "s",
        intervalMs: 60_000,
        status: () => status,
        log: () => {},
      });
      beat.start();
      await until(() => beat.accepted === 1);
      await Promise.all([beat.pulse(), beat.pulse(), beat.pulse()]);
      await beat.stop();
      expect(edge.received).toHaveLength(2);
    });

    it("gives up waiting after maxWaitMs without failing, and resolves at once when stopped", async () => {
      const edge = await fakeEdge(() => new Promise<Answer>(() => {}));
      const beat = new Heartbeat({
        edgeUrl: edge.url,
        secret: "s",
        intervalMs: 60_000,
        status: () => status,
        log: () => {},
      });
      await beat.pulse(10_000);
      expect(edge.received).toHaveLength(0);
      beat.start();
      await expect(beat.pulse(20)).resolves.toBeUndefined();
      expect(beat.accepted).toBe(0);
      // Closed once the beat has arrived: closing before it connects would leave it hanging for its timeout.
      await until(() => edge.received.length === 1);
      server?.closeAllConnections();
      await beat.stop();
    });
  });
});

/**
 * An edge in a worker thread, so it answers while the test blocks the main thread; it counts heartbeats in shared
 * memory the blocked thread can read.
 */
async function edgeInAThread(): Promise<{ url: string; beats: () => number; close: () => Promise<number> }> {
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const source = `
    const { parentPort, workerData } = require("node:worker_threads");
    const counter = new Int32Array(workerData);
    const server = require("node:http").createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        Atomics.add(counter, 0, 1);
        res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true,"draining":false}');
      });
    });
    server.listen(0, "127.0.0.1", () => parentPort.postMessage(server.address().port));
  `;
  const worker = new Worker(source, { eval: true, workerData: counter.buffer });
  const port = await new Promise<number>((resolve) => worker.once("message", resolve));
  return { url: `http://127.0.0.1:${port}`, beats: () => Atomics.load(counter, 0), close: () => worker.terminate() };
}

/** Holds the main thread like a long synchronous tokenisation does. */
function blockMainThread(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {}
}

describe("Heartbeat keeper thread", () => {
  it.each([
    [true, "keeps beating while the main thread is blocked"],
    [false, "(without it, the main thread's timer falls silent)"],
  ])("keeper %s: %s", async (keeper) => {
    const edge = await edgeInAThread();
    const logs: string[] = [];
    const beat = new Heartbeat({
      edgeUrl: edge.url,
      secret: "s",
      intervalMs: 100,
      status: () => status,
      log: (line) => logs.push(line),
      keeper,
    });
    beat.start();
    await until(() => beat.accepted >= 1);
    const before = edge.beats();
    blockMainThread(2_000);
    const during = edge.beats() - before;
    await until(() => beat.accepted >= 3);
    await beat.stop();
    await beat.stop();
    await edge.close();
    if (keeper) {
      expect(during).toBeGreaterThanOrEqual(1);
      expect(logs).toContainEqual(expect.stringMatching(/beats sent by the keeper thread while the main thread/));
    } else {
      expect(during).toBe(0);
    }
  });

  it("stays quiet while the main thread is free and only the edge is slow to answer", async () => {
    // Each beat answered after five intervals, as a local edge busy with a large upload answered in 3 s.
    const edge = await fakeEdge(
      () => new Promise<Answer>((resolve) => setTimeout(() => resolve({ status: 200, body: { ok: true } }), 500)),
    );
    const logs: string[] = [];
    const beat = new Heartbeat({
      edgeUrl: edge.url,
      secret: "s",
      intervalMs: 100,
      status: () => status,
      log: (line) => logs.push(line),
      keeper: true,
    });
    beat.start();
    await until(() => beat.accepted >= 3);
    await beat.stop();
    // Only the main thread's beats, one at a time: none resent by the keeper, nothing logged as a stall.
    expect(edge.received.length).toBeLessThanOrEqual(beat.accepted + 1);
    expect(logs.filter((line) => line.includes("keeper"))).toEqual([]);
  });
});
