/**
 * For tests: a tiny protobuf writer for SentencePiece `ModelProto` files (pieces, trainer_spec, normalizer_spec),
 * a small SentencePiece vocabulary llama.cpp can tokenize English with, and the `tokenizer.*` keys llama.cpp's
 * converter gives for it, written out by hand from the same piece list (not through the reader under test).
 */
import { type GgufMetadataEntry, kv } from "./gguf/writer";

export function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

const tag = (field: number, wire: number) => varint(field * 8 + wire);
export const varintField = (field: number, value: number) => [...tag(field, 0), ...varint(value)];
export const bytesField = (field: number, data: ArrayLike<number>) => [
  ...tag(field, 2),
  ...varint(data.length),
  ...Array.from(data),
];
const float32Field = (field: number, value: number) => [
  ...tag(field, 5),
  ...new Uint8Array(new Float32Array([value]).buffer),
];

export interface Piece {
  piece: string;
  score: number;
  /** SentencePiece's type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  type: number;
}

const encoder = new TextEncoder();

/** A ModelProto: the pieces, a trainer_spec with `modelType` and ids, a normalizer_spec (skipped by the reader). */
export function writeSentencePieceModel(pieces: readonly Piece[], modelType = 1): Uint8Array {
  const out: number[] = [];
  for (const p of pieces) {
    const body = [...bytesField(1, encoder.encode(p.piece)), ...float32Field(2, p.score)];
    // Proto2 leaves the default (NORMAL) out.
    if (p.type !== 1) body.push(...varintField(3, p.type));
    out.push(...bytesField(1, body));
  }
  // trainer_spec: model_type (3), vocab_size (4), unk/bos/eos ids (40-42).
  const trainer = [...varintField(3, modelType), ...varintField(4, pieces.length), ...varintField(40, 0)];
  trainer.push(...varintField(41, 1), ...varintField(42, 2));
  out.push(...bytesField(2, trainer));
  // normalizer_spec: name (1), add_dummy_prefix (3).
  out.push(...bytesField(3, [...bytesField(1, encoder.encode("identity")), ...varintField(3, 1)]));
  return new Uint8Array(out);
}

const WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "hello", "world", "a", "is", "it"];

/**
 * `<unk>`, `<s>`, `</s>`, the 256 byte pieces, letters and `▁word` pieces, plus two user-defined pieces (one the
 * tokenizer_config marks special, one it does not).
 */
export function tinySentencePieces(): Piece[] {
  const pieces: Piece[] = [
    { piece: "<unk>", score: 0, type: 2 },
    { piece: "<s>", score: 0, type: 3 },
    { piece: "</s>", score: 0, type: 3 },
  ];
  for (let b = 0; b < 256; b++) {
    pieces.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, score: 0, type: 6 });
  }
  pieces.push({ piece: "<start_of_turn>", score: 0, type: 4 }, { piece: "<end_of_turn>", score: 0, type: 4 });
  pieces.push({ piece: "<unused0>", score: 0, type: 5 });
  let score = -1;
  pieces.push({ piece: "\u2581", score: score--, type: 1 });
  for (const w of WORDS) pieces.push({ piece: `\u2581${w}`, score: score--, type: 1 });
  for (let c = 97; c <= 122; c++) pieces.push({ piece: String.fromCharCode(c), score: score-- - 10, type: 1 });
  return pieces;
}

/** tokenizer_config.json for the tiny pieces: `<start_of_turn>` special, `<end_of_turn>` not (it looks plain). */
export function tinySentencePieceConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const index = (p: string) => String(tinySentencePieces().findIndex((x) => x.piece === p));
  return {
    bos_token: "<s>",
    eos_token: "</s>",
    unk_token: "<unk>",
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: {
      [index("<start_of_turn>")]: { content: "<start_of_turn>", special: true },
      [index("<end_of_turn>")]: { content: "<end_of_turn>", special: false },
    },
    chat_template: "{% for m in messages %}<start_of_turn>{{ m.content }}<end_of_turn>{% endfor %}",
    ...extra,
  };
}

/**
 * The keys llama.cpp's converter writes for the tiny pieces padded to `rows`: pieces by id (user-defined → normal,
 * then the added_tokens_decoder entries at score -1000: special → control, else user-defined), `[PADi]` unused
 * rows at -10000, ids from config.json (bos 1, eos 2, pad 0: no tokenizer.json to find them in).
 */
export function tinySentencePieceKeys(rows: number, gemma: boolean): GgufMetadataEntry[] {
  const pieces = tinySentencePieces();
  const tokens = pieces.map((p) => p.piece);
  const scores = pieces.map((p) => p.score);
  const types = pieces.map((p) => (p.type === 4 ? 1 : p.type));
  const start = tokens.indexOf("<start_of_turn>");
  scores[start] = -1000;
  types[start] = 3;
  scores[start + 1] = -1000;
  types[start + 1] = 4;
  for (let i = pieces.length; i < rows; i++) {
    tokens.push(`[PAD${i}]`);
    scores.push(-10000);
    types.push(5);
  }
  const entries = [
    kv.str("tokenizer.ggml.model", "llama"),
    kv.str("tokenizer.ggml.pre", "default"),
    kv.strArr("tokenizer.ggml.tokens", tokens),
    kv.f32Arr("tokenizer.ggml.scores", scores),
    kv.i32Arr("tokenizer.ggml.token_type", types),
    kv.u32("tokenizer.ggml.bos_token_id", 1),
    kv.bool("tokenizer.ggml.add_bos_token", true),
    kv.u32("tokenizer.ggml.eos_token_id", 2),
    kv.bool("tokenizer.ggml.add_eos_token", false),
    kv.u32("tokenizer.ggml.padding_token_id", 0),
    kv.str("tokenizer.chat_template", tinySentencePieceConfig().chat_template as string),
  ];
  if (gemma) entries.push(kv.bool("tokenizer.ggml.add_space_prefix", false));
  return entries;
}
