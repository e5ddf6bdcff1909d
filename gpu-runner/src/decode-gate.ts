/**
 * Makes the parallel sequences of one context decode in ONE llama_decode per step, as llama-server's slots do.
 *
 * Why it is needed (measured on node-llama-cpp 3.22.1, see scripts/bench-batching.ts): a context queues each
 * sequence's next-token decode and, while its decode lock is held, keeps looping over whatever is queued. After a
 * batched decode each sequence samples and re-queues at a slightly different moment, so the loop starts the next
 * batch with only the sequences that were quick: with 4 streams the steady state is batches of 3 that rotate one
 * sequence out. Worse, llama.cpp's per-sequence KV streams (node-llama-cpp always sets `kv_unified = false`) split a
 * batch into one ubatch (one graph compute) per run of consecutive, increasing sequence ids, so an unsorted batch
 * such as [3, 0, 1] costs two forward passes instead of one.
 *
 * The gate sits in front of the context's decode queue: it holds each sequence's next-token decode until every
 * generating sequence has asked (or a bound passes, so a sequence busy elsewhere never stalls the rest for longer),
 * then releases them together, sorted by sequence id. One stream passes straight through. Prompt evaluations
 * (decodes of more than one token) pass at once; while one runs, held decodes wait only `minBoundMs` for it.
 * A sequence's decode counts as "asked" only from the moment it is submitted: its sampling after a batch runs
 * inside the decode's promise, so the gate cannot tell "decoding" from "sampling" and deliberately waits for both.
 *
 * Otherwise the bound is half a step (the time from releasing a batch until its first decode comes back,
 * smoothed), kept between `minBoundMs` and `maxBoundMs`: a straggler that makes it within half a step saves a whole
 * extra forward pass. The fixed 2 ms bound this replaces fell apart on a loaded machine (load 6–8, 4 streams through
 * the runner, 6 rounds of 128 tokens): 1,078 of 1,360 steps went on the timer with 1–3 of the 4 sequences and the
 * rounds gave 136–217 tok/s; with the measured bound 22 of 617 steps went on the timer, 484 carried all four, and
 * the rounds gave 213–333 tok/s (same machine, runs interleaved).
 */
import type { LlamaContext } from "node-llama-cpp";

interface PendingDecode {
  sequenceId: number;
  /** Starts the decode; calls `settled` when it settles, before its caller resumes. */
  start(settled: () => void): void;
}

export class DecodeGate {
  private pending: PendingDecode[] = [];
  private timer: NodeJS.Timeout | undefined;
  private disposed = false;
  /** Prompt evaluations in flight: their sequences may not ask for a next token for a long while. */
  private evaluatingPrompts = 0;
  /** Smoothed ms from releasing a batch until its first decode settles (0 until measured). */
  private stepMs = 0;

  /**
   * @param generating how many sequences are generating now (leased slots); the gate waits for at most these.
   * @param minBoundMs the shortest wait for the others; @param maxBoundMs the longest, however slow a step is.
   */
  constructor(
    private readonly generating: () => number,
    private readonly minBoundMs = 2,
    private readonly maxBoundMs = 25,
  ) {}

  /** How long a held decode waits for the other generating sequences now. */
  get boundMs(): number {
    if (this.evaluatingPrompts > 0) return this.minBoundMs;
    return Math.min(this.maxBoundMs, Math.max(this.minBoundMs, this.stepMs / 2));
  }

  /** Runs `decode` (of `tokens` tokens) for `sequenceId` once the other generating sequences have asked too. */
  submit<T>(sequenceId: number, tokens: number, decode: () => Promise<T>): Promise<T> {
    if (tokens > 1) {
      this.evaluatingPrompts++;
      return decode().finally(() => this.evaluatingPrompts--);
    }
    return new Promise<T>((resolve, reject) => {
      const start = (settled: () => void) =>
        void decode().then(
          (value) => {
            settled();
            resolve(value);
          },
          (err) => {
            settled();
            reject(err);
          },
        );
      this.pending.push({ sequenceId, start });
      if (!this.releaseIfComplete()) this.timer ??= setTimeout(() => this.release(), this.boundMs);
    });
  }

  /** Lets every held decode go and stops holding new ones. Idempotent. */
  dispose(): void {
    this.disposed = true;
    this.release();
  }

  private releaseIfComplete(): boolean {
    if (this.pending.length === 0 || (!this.disposed && this.pending.length < this.generating())) return false;
    this.release();
    return true;
  }

  private release(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending.sort((a, b) => a.sequenceId - b.sequenceId);
    this.pending = [];
    if (batch.length === 0) return;
    const releasedAt = performance.now();
    let measured = false;
    const measure = () => {
      if (measured) return;
      measured = true;
      const step = performance.now() - releasedAt;
      this.stepMs = this.stepMs === 0 ? step : this.stepMs * 0.8 + step * 0.2;
    };
    // Started in one synchronous run, so all land in the context's queue before its next batch is formed.
    for (const decode of batch) decode.start(measure);
  }
}

/** The internal entry point every sequence's evaluation goes through in node-llama-cpp 3.22.x. */
type DecodeTokens = (
  request: { sequenceId: number; tokens: readonly unknown[] },
  ...rest: unknown[]
) => Promise<unknown>;

/**
 * Routes the context's decodes through `gate`. Returns false (and changes nothing) when the context does not have
 * the internal method this relies on, so a node-llama-cpp upgrade degrades to its own batching instead of breaking.
 */
export function installDecodeGate(context: LlamaContext, gate: DecodeGate): boolean {
  const target = context as unknown as { _decodeTokens?: DecodeTokens };
  const original = target._decodeTokens;
  if (typeof original !== "function") return false;
  target._decodeTokens = (request, ...rest) =>
    gate.submit(request.sequenceId, request.tokens.length, () => original.call(context, request, ...rest));
  return true;
}
