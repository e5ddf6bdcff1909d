/**
 * Registers the runner with the edge and keeps it informed: POST /internal/runners/heartbeat with the
 * RunnerStatus every interval, and at once (coalesced) when models load or unload. The edge may answer
 * `draining: true`: the runner then takes no new work (until a reply says false) and exposes it to its owner.
 */
import type { RunnerStatus } from "@corral/protocol/runner";

export interface HeartbeatOptions {
  edgeUrl: string;
  secret: string;
  intervalMs: number;
  status(): RunnerStatus;
  onDraining?(draining: boolean): void;
  log?(message: string): void;
  fetchImpl?: typeof fetch;
}

export class Heartbeat {
  private timer?: NodeJS.Timeout;
  private inFlight?: Promise<void>;
  private again = false;
  private stopped = true;
  private healthy?: boolean;
  /** Beats the edge accepted (for tests and logs). */
  accepted = 0;

  constructor(private readonly options: HeartbeatOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
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
    this.inFlight = this.beat().finally(() => {
      this.inFlight = undefined;
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

  /** Stops beating; a final beat (e.g. with draining set) can be sent with `beatOnce` before. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.inFlight;
  }

  async beatOnce(): Promise<void> {
    await this.beat();
  }

  private async beat(): Promise<void> {
    const { edgeUrl, secret, fetchImpl = fetch } = this.options;
    try {
      const response = await fetchImpl(`${edgeUrl}/internal/runners/heartbeat`, {
        method: "POST",
        headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
        body: JSON.stringify(this.options.status()),
        signal: AbortSignal.timeout(Math.max(5000, this.options.intervalMs * 2)),
      });
      const body = (await response.json().catch(() => ({}))) as { draining?: unknown };
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      this.accepted++;
      this.report(true);
      if (typeof body.draining === "boolean") this.options.onDraining?.(body.draining);
    } catch (err) {
      this.report(false, err);
    }
  }

  /** Logs transitions only, so an edge that is down does not flood the log every two seconds. */
  private report(ok: boolean, err?: unknown): void {
    if (this.healthy === ok) return;
    this.healthy = ok;
    const log = this.options.log ?? ((message: string) => console.error(message));
    log(
      ok
        ? `heartbeat: registered with ${this.options.edgeUrl}`
        : `heartbeat: edge unreachable (${err instanceof Error ? err.message : String(err)}); retrying`,
    );
  }
}
