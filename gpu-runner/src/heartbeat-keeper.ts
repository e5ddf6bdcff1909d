/**
 * Keeps a runner registered while its main thread is busy. Tokenising a long prompt, rendering a template or
 * parsing a large body are synchronous calls that hold the event loop for seconds; the heartbeat timer lives on
 * that loop, so the edge stopped hearing from a runner that was still working and evicted it (issue #9: a 20 MB
 * prompt held the loop for a minute). A worker thread watches the beats the main thread sends and, when none went
 * out for 1.25 intervals while the main thread is blocked, resends the last one on its own timer, once per interval.
 * It stops after `maxStallMs` of blocking, so a runner whose main thread is truly wedged is still evicted. The resent
 * status is the last one the main thread produced: at most as old as the stall.
 *
 * Blocked is measured, not inferred from the beats: the main thread stamps the time into shared memory on a timer
 * of its own (a tenth of the interval). A beat that is late only because the edge is slow to answer the one before
 * (a busy local edge hashing a large upload took 3 s) is not a blocked thread; resending it would only add load to
 * that edge and report a stall that never happened.
 */
import { Worker } from "node:worker_threads";

export interface HeartbeatKeeperOptions {
  url: string;
  secret: string;
  intervalMs: number;
  /** Silence after which the keeper gives up and lets the edge evict the runner. */
  maxStallMs: number;
}

/** Plain JavaScript (no loader in worker threads): the thread's whole program. */
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { url, secret, intervalMs, maxStallMs, kept, alive } = workerData;
const counter = new Int32Array(kept);
const mainAlive = new BigInt64Array(alive);
let body = null;
let mainAt = Date.now();
let keptAt = 0;
let inFlight = false;
parentPort.on("message", (message) => {
  body = message;
  mainAt = Date.now();
});
setInterval(async () => {
  const now = Date.now();
  const silent = now - mainAt;
  const blocked = now - Number(Atomics.load(mainAlive, 0));
  if (body === null || inFlight || silent < intervalMs * 1.25 || blocked < intervalMs * 1.25) return;
  if (blocked > maxStallMs) return;
  // Once covering, one beat per interval, as the main thread would send.
  if (now - keptAt < intervalMs) return;
  keptAt = now;
  inFlight = true;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { authorization: "Bearer " + secret, "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(Math.max(5000, intervalMs * 2)),
    });
    await response.arrayBuffer();
    if (response.ok) Atomics.add(counter, 0, 1);
  } catch {
    // The main thread reports the edge's health; this thread only fills its silences.
  } finally {
    inFlight = false;
  }
}, Math.max(25, Math.floor(intervalMs / 10)));
`;

export class HeartbeatKeeper {
  private readonly worker: Worker;
  private readonly kept = new Int32Array(new SharedArrayBuffer(4));
  /** When the main thread's event loop last turned (epoch ms). */
  private readonly alive = new BigInt64Array(new SharedArrayBuffer(8));
  private readonly stamp: NodeJS.Timeout;
  private disposed = false;

  constructor(options: HeartbeatKeeperOptions) {
    const stampNow = () => Atomics.store(this.alive, 0, BigInt(Date.now()));
    stampNow();
    this.stamp = setInterval(stampNow, Math.max(10, Math.floor(options.intervalMs / 10)));
    this.stamp.unref();
    this.worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: { ...options, kept: this.kept.buffer, alive: this.alive.buffer },
    });
    // Never what keeps the process alive, and a failing thread only costs the cover it gives.
    this.worker.unref();
    this.worker.on("error", () => {});
  }

  /** The main thread sent (or is sending) this beat: the keeper resends it only if the main thread falls silent. */
  sent(body: string): void {
    if (!this.disposed) this.worker.postMessage(body);
  }

  /** Beats the keeper sent and the edge accepted while the main thread was busy. */
  get keptBeats(): number {
    return Atomics.load(this.kept, 0);
  }

  /** Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    clearInterval(this.stamp);
    await this.worker.terminate();
  }
}
