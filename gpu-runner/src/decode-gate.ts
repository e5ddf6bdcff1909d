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
 * The gate sits in front of the context's decode queue: it holds each sequence's decode until every generating
 * sequence has asked (or `boundMs` passes, so a sequence busy elsewhere, e.g. in a long prompt evaluation or still
 * sampling, never stalls the rest for longer), then releases them together, sorted by sequence id. One stream
 * passes straight through. A sequence's decode counts as "asked" only from the moment it is submitted: its
 * sampling after a batch runs inside the decode's promise, so the gate cannot tell "decoding" from "sampling" and
 * deliberately waits for both.
 */
import type { LlamaContext } from "node-llama-cpp";

interface PendingDecode {
  sequenceId: number;
  start(): void;
}

export class DecodeGate {
  private pending: PendingDecode[] = [];
  private timer: NodeJS.Timeout | undefined;
  private disposed = false;

  /**
   * @param generating how many sequences are generating now (leased slots); the gate waits for at most these.
   * @param boundMs the longest a decode waits for the others; small against one decode step (ms on CPU and GPU).
   */
  constructor(
    private readonly generating: () => number,
    private readonly boundMs = 2,
  ) {}

  /** Runs `decode` for `sequenceId` once the other generating sequences have asked too (or the bound passes). */
  submit<T>(sequenceId: number, decode: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({
        sequenceId,
        start: () => decode().then(resolve, reject),
      });
      if (this.disposed || this.pending.length >= this.generating()) this.release();
      else this.timer ??= setTimeout(() => this.release(), this.boundMs);
    });
  }

  /** Lets every held decode go and stops holding new ones. Idempotent. */
  dispose(): void {
    this.disposed = true;
    this.release();
  }

  private release(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending.sort((a, b) => a.sequenceId - b.sequenceId);
    this.pending = [];
    // Started in one synchronous run, so all land in the context's queue before its next batch is formed.
    for (const decode of batch) decode.start();
  }
}

/** The internal entry point every sequence's evaluation goes through in node-llama-cpp 3.22.x. */
type DecodeTokens = (request: { sequenceId: number }, ...rest: unknown[]) => Promise<unknown>;

/**
 * Routes the context's decodes through `gate`. Returns false (and changes nothing) when the context does not have
 * the internal method this relies on, so a node-llama-cpp upgrade degrades to its own batching instead of breaking.
 */
export function installDecodeGate(context: LlamaContext, gate: DecodeGate): boolean {
  const target = context as unknown as { _decodeTokens?: DecodeTokens };
  const original = target._decodeTokens;
  if (typeof original !== "function") return false;
  target._decodeTokens = (request, ...rest) =>
    gate.submit(request.sequenceId, () => original.call(context, request, ...rest));
  return true;
}
