/**
 * A value that changes over time (a download's byte count), read as a stream of its latest values: readers never
 * queue stale intermediate values, they see the newest one each time they look.
 */
export class Latest<T> {
  private version = 0;
  private waiters: (() => void)[] = [];
  private ended = false;
  private failure: { error: unknown } | null = null;

  constructor(private current: T) {}

  get value(): T {
    return this.current;
  }

  set(value: T): void {
    this.current = value;
    this.version++;
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  fail(error: unknown): void {
    this.failure = { error };
    this.wake();
  }

  /** Yields the value whenever it was set, at most once per `intervalMs`; ends when the producer ends or fails. */
  async *changes(intervalMs: number, signal?: AbortSignal): AsyncGenerator<T, void, undefined> {
    // The constructor's value is a placeholder, not news: only values the producer set are yielded.
    let seen = 0;
    for (;;) {
      if (this.failure) throw this.failure.error;
      if (seen !== this.version) {
        seen = this.version;
        yield this.current;
        await this.pause(intervalMs, signal);
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Waits `ms`, cut short when the producer ends or fails (so the last value is not delayed). */
  private pause(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.ended || this.failure || signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.endWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.endWaiters.add(done);
    });
  }

  private readonly endWaiters = new Set<() => void>();

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    if (this.ended || this.failure) for (const w of [...this.endWaiters]) w();
  }
}
