import { type GgufMetadataEntry, kv } from "../../../protocol/src/gguf/writer";
import { TINY_CHAT_TEMPLATE } from "./chat-template";
import { MODEL_SCRIPTS } from "./scripts";

/**
 * The built-in vocabulary: a GPT-2 byte-level BPE (`tokenizer.ggml.model = "gpt2"`, pre-tokenizer "default").
 * Ids 0-255 are the bytes (id = byte value) in GPT-2's bytes-to-unicode spelling, then the tokens made by the
 * merges (common English words, with and without a leading space, so prose tokenizes compactly), then the
 * tool-call script pieces no merge reaches, then the three CONTROL tokens. It does not depend on the seed.
 */

export const IM_START = "<|im_start|>";
export const IM_END = "<|im_end|>";
export const END_OF_TEXT = "<|endoftext|>";

/** llama.cpp `llama_token_type`. */
export const TOKEN_TYPE_NORMAL = 1;
export const TOKEN_TYPE_CONTROL = 3;

/** Words (and whitespace/punctuation runs) that each become a single token through merges. */
const COMMON_WORDS =
  "the and of to in is it you that he was for on are as with his they at be this have from or one had by word " +
  "but not what all were we when your can said there use an each which she do how their if will up other about " +
  "out many then them these so some her would make like him into time has look two more write go see no way " +
  "could people my than first been call who its now find day did get come made may part hello hi why sky blue " +
  "weather city name tool arguments function user assistant system model answer question Paris";

const MERGED_WORDS: readonly string[] = [
  ...COMMON_WORDS.split(" ").flatMap((w) => [w, " " + w]),
  ..."The I What How Why Hello Hi".split(" "),
  // The sentence script's pieces, so the tokenizer splits SCRIPTED_SENTENCE exactly into them.
  ...[" I", " quick", " brown", " fox", " jumps", " over", " lazy", " dog"],
  ...["\n\n", "  ", "    ", '{"', '":', '",', '"}', "}}", "</", "/>"],
];

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest map to U+0100 onwards. */
function buildByteToUnicode(): string[] {
  const table: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCodePoint(printable ? b : next++);
  }
  return table;
}

const BYTE_TO_UNICODE = buildByteToUnicode();
const UNICODE_TO_BYTE = new Map(BYTE_TO_UNICODE.map((ch, b) => [ch, b]));
const textEncoder = new TextEncoder();

/** The byte-level spelling of `text` as it appears in `tokenizer.ggml.tokens` (" the" → "Ġthe"). */
export function toByteLevel(text: string): string {
  let out = "";
  for (const b of textEncoder.encode(text)) out += BYTE_TO_UNICODE[b];
  return out;
}

/** Inverse of {@link toByteLevel}. */
export function fromByteLevel(tokenText: string): string {
  const bytes = Array.from(tokenText, (ch) => {
    const b = UNICODE_TO_BYTE.get(ch);
    if (b === undefined) throw new Error(`not a byte-level character: ${ch}`);
    return b;
  });
  return new TextDecoder().decode(new Uint8Array(bytes));
}

function byteLevelSymbols(text: string): string[] {
  return Array.from(textEncoder.encode(text), (b) => BYTE_TO_UNICODE[b]!);
}

function mergeKey(left: string, right: string): string {
  return left + " " + right;
}

/**
 * BPE on one pre-tokenized word as llama.cpp does it: repeatedly merge the adjacent pair of lowest rank,
 * leftmost first on ties, until no pair has a rank.
 */
export function applyMerges(symbols: readonly string[], ranks: ReadonlyMap<string, number>): string[] {
  const out = [...symbols];
  for (;;) {
    let best = -1;
    let bestRank = Number.POSITIVE_INFINITY;
    for (let i = 0; i + 1 < out.length; i++) {
      const rank = ranks.get(mergeKey(out[i]!, out[i + 1]!));
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank;
        best = i;
      }
    }
    if (best < 0) return out;
    out.splice(best, 2, out[best]! + out[best + 1]!);
  }
}

/**
 * Merges that make every word in `words` a single token. Each new merge ranks after all earlier ones, so it never
 * changes how an earlier word is split: that word was already one symbol before the new merge could apply.
 */
function buildMerges(words: readonly string[]): string[] {
  const merges: string[] = [];
  const ranks = new Map<string, number>();
  for (const word of words) {
    for (;;) {
      const symbols = applyMerges(byteLevelSymbols(word), ranks);
      if (symbols.length <= 1) break;
      const key = mergeKey(symbols[0]!, symbols[1]!);
      ranks.set(key, merges.length);
      merges.push(key);
    }
  }
  return merges;
}

export interface TinyVocabulary {
  /** Byte-level token texts; the special tokens are spelt literally. */
  readonly tokens: readonly string[];
  readonly tokenTypes: readonly number[];
  readonly merges: readonly string[];
  readonly imStartId: number;
  readonly imEndId: number;
  readonly endOfTextId: number;
  /** Id of the token whose decoded text is exactly `text`, or undefined. */
  idOfText(text: string): number | undefined;
  /** Token ids of `word` (one pre-tokenizer piece, e.g. " quick") after the merges. */
  encodeWord(word: string): number[];
}

function buildVocabulary(): TinyVocabulary {
  const merges = buildMerges(MERGED_WORDS);
  const tokens: string[] = [...BYTE_TO_UNICODE];
  const ids = new Map<string, number>(tokens.map((t, i) => [t, i]));
  const add = (token: string) => {
    if (!ids.has(token)) {
      ids.set(token, tokens.length);
      tokens.push(token);
    }
  };
  for (const merge of merges) add(merge.replace(" ", ""));
  for (const script of Object.values(MODEL_SCRIPTS)) for (const piece of script.pieces) add(toByteLevel(piece));
  const normalCount = tokens.length;
  for (const special of [IM_START, IM_END, END_OF_TEXT]) add(special);
  const tokenTypes = tokens.map((_, i) => (i < normalCount ? TOKEN_TYPE_NORMAL : TOKEN_TYPE_CONTROL));
  const ranks = new Map(merges.map((m, i) => [m, i]));
  return {
    tokens,
    tokenTypes,
    merges,
    imStartId: ids.get(IM_START)!,
    imEndId: ids.get(IM_END)!,
    endOfTextId: ids.get(END_OF_TEXT)!,
    idOfText: (text) => ids.get(toByteLevel(text)),
    encodeWord: (word) => applyMerges(byteLevelSymbols(word), ranks).map((s) => ids.get(s)!),
  };
}

let cached: TinyVocabulary | undefined;

export function tinyVocabulary(): TinyVocabulary {
  cached ??= buildVocabulary();
  return cached;
}

/** The `tokenizer.*` metadata of the built-in models. */
export function tokenizerMetadata(vocab: TinyVocabulary = tinyVocabulary(), addBos = false): GgufMetadataEntry[] {
  return [
    kv.str("tokenizer.ggml.model", "gpt2"),
    // Named explicitly: without it llama.cpp warns that generation quality will be degraded.
    kv.str("tokenizer.ggml.pre", "default"),
    kv.strArr("tokenizer.ggml.tokens", vocab.tokens),
    kv.i32Arr("tokenizer.ggml.token_type", vocab.tokenTypes),
    kv.strArr("tokenizer.ggml.merges", vocab.merges),
    kv.u32("tokenizer.ggml.bos_token_id", vocab.endOfTextId),
    kv.u32("tokenizer.ggml.eos_token_id", vocab.imEndId),
    kv.u32("tokenizer.ggml.padding_token_id", vocab.endOfTextId),
    // ChatML needs no BOS; Qwen-style models leave it off too. Tests that need a llama-style BOS ask for one.
    kv.bool("tokenizer.ggml.add_bos_token", addBos),
    kv.bool("tokenizer.ggml.add_eos_token", false),
    kv.str("tokenizer.chat_template", TINY_CHAT_TEMPLATE),
  ];
}
