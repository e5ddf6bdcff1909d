/**
 * Registers the runner with the edge and keeps it informed: POST /internal/runners/heartbeat with the
 * RunnerStatus every interval, and at once (coalesced) when models load or unload; `pulse` also waits for the
 * edge's answer (explicit load/unload requests). The edge may answer
 * `draining: true`: the runner then takes no new work (until a reply says false) and exposes it to its owner.
 * Each beat is checked with the edge's own reader (`readRunnerStatus`) before it is sent: what the edge would drop
 * is dropped here and logged, so a slip in the runner's bookkeeping shows in its log, not as an eviction.
 */
import { type RunnerStatus, readRunnerStatus } from "@corral/protocol/runner";
import { HeartbeatKeeper } from "./heartbeat-keeper";

/** How long a worker thread covers for a busy main thread before the runner is let go (see heartbeat-keeper.ts). */
export const KEEPER_MAX_STALL_MS = 120_000;

export interface HeartbeatOptions {
  edgeUrl: string;
  secret: string;
  intervalMs: number;
  status(): RunnerStatus;
  onDraining?(draining: boolean): void;
  log?(message: string): void;
  fetchImpl?: typeof fetch;
  /** Resend beats from a worker thread while the main thread is blocked (the runner; off in most unit tests). */
  keeper?: boolean;
}

export class Heartbeat {
  private timer?: NodeJS.Timeout;
  private inFlight?: Promise<void>;
  /** The status the beat in flight carries, and the pulses waiting for its answer. */
  private inFlightBody?: string;
  private inFlightWaiters: (() => void)[] = [];
  private again = false;
  /** Pulses waiting for the next beat: the one in flight carried an older status. */
  private waiters: (() => void)[] = [];
  private stopped = true;
  private healthy?: boolean;
  /** The last problems logged, so a persistent slip is logged once, not every beat. */
  private lastProblems = "";
  /** Beats the edge accepted (for tests and logs). */
  accepted = 0;
  private keeper?: HeartbeatKeeper;
  private keptLogged = 0;

  constructor(private readonly options: HeartbeatOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.options.keeper) {
      const { edgeUrl, secret, intervalMs } = this.options;
      this.keeper = new HeartbeatKeeper({
        url: `${edgeUrl}/internal/runners/heartbeat`,
        secret,
        intervalMs,
        maxStallMs: KEEPER_MAX_STALL_MS,
      });
    }
    this.trigger();
  }

  /** Sends a beat now; a beat requested while one is in flight is sent right after it. */
  trigger(): void {
    if (this.stopped) return;
    if (this.inFlight) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    const body = this.body();
    this.inFlightBody = body;
    this.inFlightWaiters = this.waiters.splice(0);
    this.inFlight = this.beat(body).finally(() => {
      this.inFlight = undefined;
      for (const resolve of this.inFlightWaiters.splice(0)) resolve();
      if (this.stopped) return;
      if (this.again) {
        this.again = false;
        this.trigger();
        return;
      }
      this.timer = setTimeout(() => this.trigger(), this.options.intervalMs);
      this.timer.unref();
    });
  }

  /**
   * Resolves once the edge has answered (accepted or not) a beat carrying the current status, or after
   * `maxWaitMs`: a client told "loaded"/"unloaded" then sees it in /api/ps, as in Ollama, and a slow edge only
   * delays the answer. Joins the beat in flight when it carries the same status, else sends one right after it,
   * so concurrent pulses share beats. Never rejects; resolves at once when stopped.
   */
  pulse(maxWaitMs = 5000): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, maxWaitMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      if (this.inFlight && this.inFlightBody === this.body()) {
        this.inFlightWaiters.push(done);
        return;
      }
      this.waiters.push(done);
      this.trigger();
    });
  }

  /** Stops beating; a final beat (e.g. with draining set) can be sent with `beatOnce` before. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.keeper?.dispose();
    this.keeper = undefined;
    for (const resolve of [...this.waiters.splice(0), ...this.inFlightWaiters.splice(0)]) resolve();
    await this.inFlight;
  }

  async beatOnce(): Promise<void> {
    await this.beat(this.body());
  }

  /** The status as the edge will read it; an envelope the edge would refuse is sent as is (and logged). */
  private body(): string {
    const status = this.options.status();
    const read = readRunnerStatus(status);
    const problems = read.ok ? read.dropped.join("; ") : read.error;
    if (problems && problems !== this.lastProblems) this.log(`heartbeat: status repaired before sending: ${problems}`);
    this.lastProblems = problems;
    return JSON.stringify(read.ok ? read.status : status);
  }

  private async beat(body: string): Promise<void> {
    const { edgeUrl, secret, fetchImpl = fetch } = this.options;
    this.keeper?.sent(body);
    this.logKeptBeats();
    try {
      const response = await fetchImpl(`${edgeUrl}/internal/runners/heartbeat`, {
        method: "POST",
        headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(Math.max(5000, this.options.intervalMs * 2)),
      });
      const answer = (await response.json().catch(() => ({}))) as { draining?: unknown };
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      this.accepted++;
      this.report(true);
      if (typeof answer.draining === "boolean") this.options.onDraining?.(answer.draining);
    } catch (err) {
      this.report(false, err);
    }
  }

  /** Logs transitions only, so an edge that is down does not flood the log every two seconds. */
  private report(ok: boolean, err?: unknown): void {
    if (this.healthy === ok) return;
    this.healthy = ok;
    this.log(
      ok
        ? `heartbeat: registered with ${this.options.edgeUrl}`
        : `heartbeat: edge unreachable (${err instanceof Error ? err.message : String(err)}); retrying`,
    );
  }

  /** Once the main thread is back: how many beats the keeper sent for it (a stall worth knowing about). */
  private logKeptBeats(): void {
    const kept = this.keeper?.keptBeats ?? 0;
    if (kept === this.keptLogged) return;
    this.log(`heartbeat: ${kept - this.keptLogged} beats sent by the keeper thread while the main thread was busy`);
    this.keptLogged = kept;
  }

  private log(message: string): void {
    (this.options.log ?? ((line: string) => console.error(line)))(message);
  }
}
