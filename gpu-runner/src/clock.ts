/**
 * Time as the runner sees it. Keep-alive expiry and durations read this instead of Date/setTimeout directly,
 * so tests can move time forward without waiting.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Monotonic nanoseconds, for durations reported to clients. */
  monotonicNs(): bigint;
  /** Runs `fn` once after `ms`; timers never keep the process alive. */
  setTimer(fn: () => void, ms: number): TimerHandle;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicNs: () => process.hrtime.bigint(),
  setTimer(fn, ms) {
    // setTimeout overflows above 2^31-1 ms (~24.8 days) and fires at once; longer delays re-arm in steps.
    const MAX_DELAY = 2 ** 31 - 1;
    let handle: NodeJS.Timeout;
    const arm = (remaining: number) => {
      handle = setTimeout(
        () => (remaining > MAX_DELAY ? arm(remaining - MAX_DELAY) : fn()),
        Math.min(remaining, MAX_DELAY),
      );
      handle.unref();
    };
    arm(Math.max(0, ms));
    return { cancel: () => clearTimeout(handle) };
  },
};

/** A clock that only moves when told to; `advance` fires the timers that fall due, in order. */
export class FakeClock implements Clock {
  private current: number;
  private timers: { at: number; fn: () => void; cancelled: boolean }[] = [];

  constructor(start = Date.UTC(2025, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  monotonicNs(): bigint {
    return BigInt(this.current) * 1_000_000n;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const timer = { at: this.current + Math.max(0, ms), fn, cancelled: false };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      const due = this.timers.filter((t) => !t.cancelled && t.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.cancelled = true;
      this.current = Math.max(this.current, due.at);
      due.fn();
    }
    this.timers = this.timers.filter((t) => !t.cancelled);
    this.current = target;
  }

  /** Timers still waiting to fire. */
  get pendingTimers(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
}
