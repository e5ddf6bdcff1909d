/**
 * Ollama's `logprobs` / `top_logprobs` for generate and chat, from node-llama-cpp 3.22.1.
 *
 * What node-llama-cpp exposes: LlamaCompletion (which does our stop strings, grammars, penalties and context shift)
 * reports only tokens and text. Underneath, it pulls tokens from `LlamaContextSequence.evaluate()`, whose twin
 * `evaluateWithMetadata(tokens, {confidence, probabilities}, options)` yields each sampled token together with its
 * probability and the whole next-token distribution "after applying the given options" (temperature, top-k, top-p,
 * min-p, penalties, grammar): the distribution the sampler drew from. So LlamaCompletion is handed a view of the
 * sequence whose `evaluate` is `evaluateWithMetadata` (a Proxy; every other member is the sequence's own), and each
 * sample is recorded. LlamaCompletion then releases tokens through `onToken` in generation order, right before the
 * text they make (`onTextChunk`); tokens it never releases (a stop string, the end-of-generation token) are never
 * reported. A released group's texts partition exactly the text of its chunk, so the tokens concatenate to the
 * output (a token ending inside a UTF-8 character gets "" and the next one carries the character).
 */
import type { LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";

export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export interface Logprob extends TokenLogprob {
  top_logprobs?: TokenLogprob[];
}

interface Sample {
  token: Token;
  confidence: number;
  probabilities?: Map<Token, number>;
}

const encoder = new TextEncoder();
/** Tokens of context for detokenizing the next ones (leading-space rules of some tokenizers). */
const CONTEXT_TOKENS = 8;

/** ln(p); a probability of 0 (cut by top-k/top-p) is -Infinity, which JSON cannot carry: the float minimum instead. */
const logOf = (p: number) => (p > 0 ? Math.log(p) : -Number.MAX_VALUE);

export class LogprobRecorder {
  private readonly samples: Sample[] = [];
  private released: Token[] = [];
  private pending: Logprob[] = [];

  constructor(
    private readonly model: LlamaModel,
    /** top_logprobs: how many alternatives per token (0–20, validated by protocol). */
    private readonly top: number,
  ) {}

  /** The sequence as LlamaCompletion should see it: its generated tokens go through evaluateWithMetadata. */
  tap(sequence: LlamaContextSequence): LlamaContextSequence {
    const metadata = { confidence: true, probabilities: this.top > 0 } as const;
    const record = (sample: Sample) => this.samples.push(sample);
    return new Proxy(sequence, {
      get(target, property) {
        if (property === "evaluate") {
          return (tokens: Token[], options?: Parameters<LlamaContextSequence["evaluate"]>[1]) =>
            tokensOf(target.evaluateWithMetadata(tokens, metadata, options), record);
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  /** LlamaCompletion's onToken: these tokens are about to be emitted as one text chunk. */
  release(tokens: readonly Token[]): void {
    const texts = this.texts(tokens);
    tokens.forEach((token, i) => {
      // Released tokens are a prefix of the samples in order; samples it never released are skipped.
      let sample = this.samples.shift();
      while (sample && sample.token !== token) sample = this.samples.shift();
      const text = texts[i] ?? "";
      const entry: Logprob = { token: text, logprob: logOf(sample?.confidence ?? 0), bytes: [...encoder.encode(text)] };
      if (this.top > 0 && sample?.probabilities) entry.top_logprobs = this.alternatives(sample.probabilities);
      this.pending.push(entry);
    });
    this.released = [...this.released, ...tokens].slice(-CONTEXT_TOKENS);
  }

  /** The entries released since the last call, for the chunk being emitted. */
  drain(): Logprob[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }

  /** Each token's share of the group's text: prefix by prefix, a split character going to the token ending it. */
  private texts(tokens: readonly Token[]): string[] {
    const out: string[] = [];
    let done = "";
    for (let i = 0; i < tokens.length; i++) {
      const text = this.model.detokenize(tokens.slice(0, i + 1), false, this.released);
      if (text.endsWith("\uFFFD") && i < tokens.length - 1) {
        out.push("");
        continue;
      }
      out.push(text.slice(done.length));
      done = text;
    }
    return out;
  }

  /** The `top` most likely tokens (node-llama-cpp sorts the map from the highest probability down). */
  private alternatives(probabilities: Map<Token, number>): TokenLogprob[] {
    const out: TokenLogprob[] = [];
    for (const [token, p] of probabilities) {
      if (out.length >= this.top) break;
      const text = this.model.detokenize([token], false, this.released);
      out.push({ token: text, logprob: logOf(p), bytes: [...encoder.encode(text)] });
    }
    return out;
  }
}

/** What a caller may send into the evaluation (tokens to force next), as node-llama-cpp's generators take. */
type Steer = Token | Token[] | undefined;

/** evaluateWithMetadata's samples as evaluate's tokens, recording each; the caller's inputs pass through. */
async function* tokensOf(
  samples: AsyncGenerator<Sample, void, Steer>,
  record: (sample: Sample) => void,
): AsyncGenerator<Token, void, Steer> {
  let input: Steer;
  try {
    for (;;) {
      const next = await samples.next(input);
      if (next.done) return;
      record(next.value);
      input = yield next.value.token;
    }
  } finally {
    await samples.return();
  }
}

/** How many alternatives a request wants per token, or undefined when it asked for no logprobs. */
export function requestedLogprobs(request: { logprobs?: boolean; top_logprobs?: number }): number | undefined {
  return request.logprobs ? (request.top_logprobs ?? 0) : undefined;
}

/**
 * Entries waiting for the next chunk that goes out: the thinking and tool-call parsers may hold text back, and
 * the entries travel with whatever chunk comes next (at the latest the final one), so none is lost or repeated.
 */
export class PendingLogprobs {
  private entries: Logprob[] = [];

  add(entries: readonly Logprob[] | undefined): void {
    if (entries?.length) this.entries.push(...entries);
  }

  /** `{logprobs}` to spread into the chunk being written, or nothing. */
  take(): { logprobs?: Logprob[] } {
    if (!this.entries.length) return {};
    const logprobs = this.entries;
    this.entries = [];
    return { logprobs };
  }
}
