/**
 * Byte work in bounded turns. workerd runs a loop over a stream whose bytes are already buffered (a fast client on
 * a good link; every local upload) as one chain of continuations: each `read()` resolves at once, so no timer and no
 * other request on the isolate runs until the loop ends. Under `npm start` a 52 MB `POST /api/blobs` held the
 * Worker's timers for 2.4 s that way, and every other tenant's request (and the runners' heartbeats) waited behind
 * it. A TurnBudget counts the bytes handled since the last macrotask and yields one before the count passes
 * `bytesPerTurn`; work it hands bytes to (hashing) gets them in slices no larger than that.
 */

const MiB = 1024 * 1024;
/** ~4 ms of WebAssembly SHA-256 on the dev VM (~250 MiB/s): short enough for other requests, few enough yields. */
export const BYTES_PER_TURN = MiB;

export type YieldTurn = () => Promise<void>;

/** A macrotask: timers and other requests' events queued meanwhile run before the caller continues. */
export const nextMacrotask: YieldTurn = () => new Promise((resolve) => setTimeout(resolve, 0));

export class TurnBudget {
  private used = 0;

  constructor(
    private readonly bytesPerTurn = BYTES_PER_TURN,
    private readonly yieldTurn: YieldTurn = nextMacrotask,
  ) {}

  /** Counts `bytes` handled by the caller (a native read or digest), yielding first if they would pass the budget. */
  async spend(bytes: number): Promise<void> {
    if (this.used > 0 && this.used + bytes > this.bytesPerTurn) await this.nextTurn();
    this.used += bytes;
  }

  /** Hands `bytes` to `work` in slices that fit the turn's budget, yielding between turns. */
  async slice(bytes: Uint8Array, work: (slice: Uint8Array) => void): Promise<void> {
    for (let offset = 0; offset < bytes.length; ) {
      if (this.used >= this.bytesPerTurn) await this.nextTurn();
      const n = Math.min(bytes.length - offset, this.bytesPerTurn - this.used);
      work(bytes.subarray(offset, offset + n));
      this.used += n;
      offset += n;
    }
  }

  private async nextTurn(): Promise<void> {
    await this.yieldTurn();
    this.used = 0;
  }
}
