/**
 * Tokenisation that keeps the runner's event loop free. llama.cpp tokenises synchronously: ~3 µs per byte with the
 * built-in byte-level vocabulary here, so a 4 MB prompt held the main thread for 12 s, stalling every other
 * tenant's stream on the runner and its heartbeats. Texts up to `inlineBytes` are tokenised in place (well under a
 * millisecond); longer ones go to one worker thread that holds vocabulary-only copies of the models.
 */
import { Worker } from "node:worker_threads";
import type { LlamaModel, Token } from "node-llama-cpp";

export interface TokenizeRequest {
  id: number;
  modelPath: string;
  text: string;
  special: boolean;
}

export type TokenizeReply = { id: number; tokens: Uint32Array } | { id: number; error: string };

export interface Tokenizer {
  /** `model` tokenises short texts in place; the thread loads the vocabulary from `modelPath` for long ones. */
  tokenize(model: LlamaModel, modelPath: string, text: string, special: boolean): Promise<Token[]>;
  dispose(): Promise<void>;
}

/** Tokenises on the calling thread: for tests and tools that have no event loop to protect. */
export const inlineTokenizer: Tokenizer = {
  tokenize: (model, _modelPath, text, special) => Promise.resolve(model.tokenize(text, special)),
  dispose: () => Promise.resolve(),
};

/** 16 KiB: about 50 µs of tokenisation, below the cost of a round trip to the thread. */
export const INLINE_TOKENIZE_BYTES = 16 << 10;

export class OffThreadTokenizer implements Tokenizer {
  private worker?: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve(tokens: Token[]): void; reject(err: Error): void }>();

  constructor(private readonly inlineBytes = INLINE_TOKENIZE_BYTES) {}

  tokenize(model: LlamaModel, modelPath: string, text: string, special: boolean): Promise<Token[]> {
    // String length bounds the UTF-8 size from below by at most 3x; either way short texts stay inline.
    if (text.length <= this.inlineBytes) return Promise.resolve(model.tokenize(text, special));
    const id = this.nextId++;
    return new Promise<Token[]>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const request: TokenizeRequest = { id, modelPath, text, special };
      this.thread().postMessage(request);
    });
  }

  /** Stops the thread; requests still waiting fail. Idempotent. */
  async dispose(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.failAll(new Error("tokenizer stopped"));
    await worker?.terminate();
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL("./tokenizer-worker.mjs", import.meta.url));
    worker.unref();
    worker.on("message", (reply: TokenizeReply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if ("error" in reply) waiter?.reject(new Error(`tokenize: ${reply.error}`));
      else waiter?.resolve(Array.from(reply.tokens) as Token[]);
    });
    // A crashed thread fails what it held; the next long text starts a new one.
    const lost = (err: Error) => {
      if (this.worker === worker) this.worker = undefined;
      this.failAll(err);
    };
    worker.on("error", lost);
    worker.on("exit", (code) => lost(new Error(`tokenizer thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private failAll(err: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
  }
}
