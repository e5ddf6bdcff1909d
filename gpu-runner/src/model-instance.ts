/**
 * One loaded model instance: a LlamaContext over shared weights with PARALLEL sequences. node-llama-cpp batches
 * the sequences of one context together, so concurrent requests on one instance share every decode.
 * Sequences are created once and handed out per request; a released sequence keeps its KV cache, and the next
 * request gets the free sequence whose cached tokens share the longest prefix with its prompt.
 */
import type { LlamaContext, LlamaContextSequence, LlamaEmbeddingContext, LlamaModel, Token } from "node-llama-cpp";
import type { BlobLease } from "./blob-cache";
import { DecodeGate, installDecodeGate } from "./decode-gate";
import { busy, cancelled } from "./errors";
import type { Tokenizer } from "./tokenizer";
import type { LlamaServerProcess } from "./vision/llama-server";

export interface InstanceSpec {
  modelBlob: string;
  modelSize: number;
  adapters: readonly { digest: string; size: number }[];
  /** The vision projector (mmproj GGUF): image requests go to a llama-server with it. */
  projector?: { digest: string; size: number };
  /** Context length of each sequence (num_ctx). */
  numCtx: number;
  numBatch?: number;
}

/** Load-time settings identify an instance: a request with a different num_ctx needs its own context. */
export function instanceKey(spec: InstanceSpec): string {
  const adapters = spec.adapters.map((a) => a.digest).join(",");
  const projector = spec.projector ? `|proj=${spec.projector.digest}` : "";
  return `${spec.modelBlob}|${adapters}${projector}|ctx=${spec.numCtx}|batch=${spec.numBatch ?? "default"}`;
}

export interface SequenceLease {
  readonly sequence: LlamaContextSequence;
  /** Gives the sequence back; `reset` drops its KV cache (after a failure mid-evaluation). Idempotent. */
  release(options?: { reset?: boolean }): void;
}

interface Slot {
  sequence: LlamaContextSequence;
  busy: boolean;
  /** Order of the last release (0: never used); the least recently used slot is the one to overwrite. */
  lastUsed: number;
}

/**
 * A cached prefix is worth reusing when it covers at least this share of the new prompt (llama-server's slot
 * similarity default). Below it, a request takes the least recently used slot instead: a shared first token or a
 * short common preamble must not overwrite another conversation's cached history.
 */
export const PREFIX_REUSE_SHARE = 0.5;

/**
 * Which free slot a prompt of `promptLength` tokens takes: the longest shared prefix if it is worth reusing, else
 * the least recently used slot (never-used slots first, lowest sequence id on ties, which keeps busy ids compact).
 */
export function chooseSlot<T extends { shared: number; lastUsed: number }>(
  free: readonly T[],
  promptLength: number,
): T | undefined {
  let best: T | undefined;
  for (const slot of free) {
    if (!best || slot.shared > best.shared) best = slot;
  }
  if (best && best.shared > 0 && best.shared >= promptLength * PREFIX_REUSE_SHARE) return best;
  let lru: T | undefined;
  for (const slot of free) {
    if (!lru || slot.lastUsed < lru.lastUsed) lru = slot;
  }
  return lru;
}

interface Waiter {
  tokens: readonly Token[] | undefined;
  resolve(lease: SequenceLease): void;
  reject(err: unknown): void;
}

export interface MemoryEstimate {
  ram: number;
  vram: number;
}

/** The instance's image path: a supervised llama-server with the projector, and the projector blob's lease. */
export interface VisionBackend {
  server: LlamaServerProcess;
  projectorLease: BlobLease;
}

export class ModelInstance {
  private readonly slots: Slot[];
  private releases = 0;
  private readonly waiters: Waiter[] = [];
  private embeddingContext?: Promise<LlamaEmbeddingContext>;
  private disposing?: Promise<void>;
  /** Releases the generating sequences' decodes together, so each step is one batched forward pass. */
  private readonly decodeGate = new DecodeGate(() => this.busySequences);
  /** Requests holding this instance (sequences or embeddings); it never unloads while > 0. */
  users = 0;
  keepAliveMs: number;
  /** Epoch ms at which an idle instance unloads; Infinity for keep_alive < 0. */
  expiresAt = Number.POSITIVE_INFINITY;
  /** The tenant whose request used it last, when the edge said (the fair-share rule of unloading). */
  tenant: string | undefined;

  constructor(
    readonly key: string,
    readonly spec: InstanceSpec,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
    readonly contextMemory: MemoryEstimate,
    private readonly adapterLeases: readonly BlobLease[],
    private readonly options: {
      maxWaiting: number;
      threads: number;
      tokenizer: Tokenizer;
      /** The weights' file in the blob cache (held while the instance lives). */
      modelPath: string;
      onDisposed: () => void;
    },
    keepAliveMs: number,
    readonly vision?: VisionBackend,
  ) {
    this.keepAliveMs = keepAliveMs;
    // Slots in sequence-id order: ties in chooseSlot go to the lowest id, which keeps the busy ids consecutive
    // (llama.cpp evaluates a run of consecutive sequence ids as one ubatch).
    this.slots = Array.from({ length: context.totalSequences }, () => ({
      sequence: context.getSequence(),
      busy: false,
      lastUsed: 0,
    }));
    installDecodeGate(context, this.decodeGate);
  }

  get disposed(): boolean {
    return this.disposing !== undefined;
  }

  get totalSequences(): number {
    return this.slots.length;
  }

  get busySequences(): number {
    return this.slots.filter((slot) => slot.busy).length;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * A free sequence, preferring the one whose cached tokens best match `tokens`; waits (FIFO, bounded) when all
   * are busy. The wait ends with 499 when `signal` aborts and 503 when the queue is full.
   */
  acquireSequence(tokens: readonly Token[] | undefined, signal?: AbortSignal): Promise<SequenceLease> {
    if (this.disposed) return Promise.reject(new Error("model instance is unloaded"));
    if (signal?.aborted) return Promise.reject(cancelled());
    const slot = this.pickFreeSlot(tokens);
    if (slot) return Promise.resolve(this.leaseSlot(slot));
    if (this.waiters.length >= this.options.maxWaiting) return Promise.reject(busy());
    return new Promise<SequenceLease>((resolve, reject) => {
      const onAbort = () => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(cancelled());
      };
      const waiter: Waiter = {
        tokens,
        resolve: (lease) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(lease);
        },
        reject: (err) => {
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private pickFreeSlot(tokens: readonly Token[] | undefined): Slot | undefined {
    const free = this.slots
      .filter((slot) => !slot.busy)
      .map((slot) => ({
        slot,
        lastUsed: slot.lastUsed,
        shared: tokens ? slot.sequence.compareContextTokens(tokens as Token[]).firstDifferentIndex : 0,
      }));
    return chooseSlot(free, tokens?.length ?? 0)?.slot;
  }

  private leaseSlot(slot: Slot): SequenceLease {
    slot.busy = true;
    let released = false;
    return {
      sequence: slot.sequence,
      release: ({ reset = false } = {}) => {
        if (released) return;
        released = true;
        const handOver = () => {
          slot.busy = false;
          slot.lastUsed = ++this.releases;
          const next = this.waiters.shift();
          if (next && !this.disposed) next.resolve(this.leaseSlot(slot));
        };
        if (reset && !slot.sequence.disposed) {
          slot.sequence.clearHistory().then(handOver, handOver);
        } else {
          handOver();
        }
      },
    };
  }

  /** The model's tokens for `text` (`special`: parse special-token text); long texts off the event loop. */
  tokenize(text: string, special: boolean): Promise<Token[]> {
    return this.options.tokenizer.tokenize(this.model, this.options.modelPath, text, special);
  }

  /** The embedding context, created on first use with room for a whole input in one batch. */
  embeddings(): Promise<LlamaEmbeddingContext> {
    if (this.disposed) return Promise.reject(new Error("model instance is unloaded"));
    this.embeddingContext ??= this.model.createEmbeddingContext({
      contextSize: this.spec.numCtx,
      batchSize: this.spec.numCtx,
      threads: this.options.threads,
    });
    this.embeddingContext.catch(() => {
      this.embeddingContext = undefined;
    });
    return this.embeddingContext;
  }

  /**
   * Frees the context, its sequences, the adapters' blob leases and the vision server (killed) with its
   * projector lease. Idempotent; waiters get an error.
   */
  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      for (const waiter of this.waiters.splice(0)) waiter.reject(busy("model was unloaded, please try again"));
      this.decodeGate.dispose();
      const embedding = this.embeddingContext;
      this.embeddingContext = undefined;
      await embedding?.then((ctx) => ctx.dispose()).catch(() => {});
      await this.context.dispose().catch(() => {});
      await this.vision?.server.dispose();
      this.vision?.projectorLease.release();
      for (const lease of this.adapterLeases) lease.release();
      this.options.onDisposed();
    })();
    return this.disposing;
  }
}
