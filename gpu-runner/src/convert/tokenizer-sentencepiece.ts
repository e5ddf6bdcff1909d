/**
 * A SentencePiece tokenizer.model as GGUF `tokenizer.*` keys (llama.cpp's `llama` tokenizer), by the rules of
 * convert_hf_to_gguf.py's `_create_vocab_sentencepiece` (Phi3MiniModel's variant for phi3) and gguf-py's
 * SpecialVocab: the embedding's rows start as `[PADi]` UNUSED tokens scored -10000, the model's pieces fill them by
 * id with their scores and types, then added_tokens.json and tokenizer_config.json's added_tokens_decoder (and, for
 * Phi-3, tokenizer.json's added_tokens) override their ids with score -1000; special ids come from
 * tokenizer_config.json's tokens found among tokenizer.json's added tokens, then from config.json's `*_token_id`.
 */
import { ApiError } from "@corral/protocol/errors";
import { type GgufMetadataEntry, kv } from "@corral/protocol/gguf/writer";
import { PieceType, readSentencePiece } from "@corral/protocol/sentencepiece";
import { chatTemplate, isId, objectOf, parseJson, SPECIAL_KEYS } from "./tokenizer";

export interface SentencePieceFiles {
  model: Uint8Array;
  config: string;
  tokenizer?: string;
  tokenizerConfig?: string;
  /** added_tokens.json: content → id. */
  addedTokens?: string;
}

const SCORE_PAD = -10000;
const SCORE_ADDED = -1000;

interface Vocabulary {
  tokens: string[];
  scores: number[];
  types: number[];
}

/** `flavour` picks the converter: phi3's, or the generic one (gemma adds add_space_prefix = false). */
export function sentencePieceMetadata(
  files: SentencePieceFiles,
  vocabRows: number,
  flavour: "generic" | "gemma" | "phi3",
): GgufMetadataEntry[] {
  const vocab: Vocabulary = {
    tokens: Array.from({ length: vocabRows }, (_, i) => `[PAD${i}]`),
    scores: new Array(vocabRows).fill(SCORE_PAD),
    types: new Array(vocabRows).fill(PieceType.UNUSED),
  };
  const { pieces } = readSentencePiece(files.model);
  // Pieces past the embedding's rows are dropped, as llama.cpp's converter drops them.
  for (let id = 0; id < Math.min(pieces.length, vocabRows); id++) {
    const p = pieces[id]!;
    vocab.tokens[id] = p.piece;
    vocab.scores[id] = p.score;
    // SentencePieceProcessor reports unknown, control, unused and byte pieces; anything else (user-defined too) is
    // a normal token to the converter.
    vocab.types[id] = p.type === PieceType.USER_DEFINED ? PieceType.NORMAL : p.type;
  }
  if (files.addedTokens !== undefined) {
    const added = objectOf(parseJson(files.addedTokens, "added_tokens.json"), "added_tokens.json");
    for (const [content, id] of Object.entries(added)) {
      if (!isId(id)) throw new ApiError(400, `added_tokens.json token ${JSON.stringify(content)} has an invalid id`);
      if (id < vocabRows) set(vocab, id, content, PieceType.USER_DEFINED);
    }
  }
  const tokenizerConfig =
    files.tokenizerConfig === undefined
      ? {}
      : objectOf(parseJson(files.tokenizerConfig, "tokenizer_config.json"), "tokenizer_config.json");
  const decoder = tokenizerConfig.added_tokens_decoder ?? {};
  for (const [key, value] of Object.entries(objectOf(decoder, "tokenizer_config.json added_tokens_decoder"))) {
    const id = Number(key);
    const token = objectOf(value, `tokenizer_config.json added token ${key}`);
    if (!isId(id) || typeof token.content !== "string") {
      throw new ApiError(400, `tokenizer_config.json added token ${JSON.stringify(key)} has no valid id or content`);
    }
    if (id < vocabRows) addDecoded(vocab, id, token.content, token.special === true, flavour === "phi3");
  }
  const tokenizerAdded = tokenizerJsonAdded(files.tokenizer);
  if (flavour === "phi3") {
    for (const t of tokenizerAdded) if (t.id < vocabRows) addDecoded(vocab, t.id, t.content, t.special, true);
  }
  const entries = [
    kv.str("tokenizer.ggml.model", "llama"),
    kv.str("tokenizer.ggml.pre", "default"),
    kv.strArr("tokenizer.ggml.tokens", vocab.tokens),
    kv.f32Arr("tokenizer.ggml.scores", vocab.scores),
    kv.i32Arr("tokenizer.ggml.token_type", vocab.types),
  ];
  if (flavour === "gemma") entries.push(kv.bool("tokenizer.ggml.add_space_prefix", false));
  entries.push(...specialEntries(tokenizerConfig, tokenizerAdded, files.config, vocabRows));
  return entries;
}

function set(vocab: Vocabulary, id: number, content: string, type: number): void {
  vocab.tokens[id] = content;
  vocab.scores[id] = SCORE_ADDED;
  vocab.types[id] = type;
}

/** An added token from tokenizer_config.json (or Phi-3's tokenizer.json): special ones are CONTROL. */
function addDecoded(vocab: Vocabulary, id: number, content: string, special: boolean, phi3: boolean): void {
  if (special || (!phi3 && looksSpecial(content))) set(vocab, id, content, PieceType.CONTROL);
  // The generic converter pre-normalizes a user-defined token's `▁` to a space; Phi-3's keeps it.
  else set(vocab, id, phi3 ? content : content.replaceAll("\u2581", " "), PieceType.USER_DEFINED);
}

/** Added tokens some models forget to mark special (convert_hf_to_gguf.py's does_token_look_special). */
function looksSpecial(t: string): boolean {
  return (
    ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].includes(t) ||
    (t.startsWith("<|") && t.endsWith("|>")) ||
    (t.startsWith("<\uff5c") && t.endsWith("\uff5c>")) ||
    (t.startsWith("<unused") && t.endsWith(">"))
  );
}

function tokenizerJsonAdded(text: string | undefined): { id: number; content: string; special: boolean }[] {
  if (text === undefined) return [];
  const list = objectOf(parseJson(text, "tokenizer.json"), "tokenizer.json").added_tokens ?? [];
  if (!Array.isArray(list)) throw new ApiError(400, "tokenizer.json added_tokens is not an array");
  return list.map((t) => {
    const o = objectOf(t, "tokenizer.json added token");
    if (!isId(o.id) || typeof o.content !== "string") {
      throw new ApiError(400, "tokenizer.json has an added token without an id or content");
    }
    return { id: o.id, content: o.content, special: o.special === true };
  });
}

/** SpecialVocab's ids, add_* flags and chat template. */
function specialEntries(
  tokenizerConfig: Record<string, unknown>,
  added: { id: number; content: string }[],
  configText: string,
  vocabRows: number,
): GgufMetadataEntry[] {
  const config = objectOf(parseJson(configText, "config.json"), "config.json");
  const entries: GgufMetadataEntry[] = [];
  for (const [type, key] of SPECIAL_KEYS) {
    const raw = tokenizerConfig[`${type}_token`];
    const content = typeof raw === "string" ? raw : (raw as { content?: unknown } | null)?.content;
    const byContent = typeof content === "string" ? added.find((t) => t.content === content)?.id : undefined;
    const fromConfig = config[`${type}_token_id`];
    const id = byContent ?? (isId(fromConfig) ? fromConfig : undefined);
    if (id !== undefined && id < vocabRows) entries.push(kv.u32(`tokenizer.ggml.${key}_token_id`, id));
    const add = tokenizerConfig[`add_${type}_token`];
    if (typeof add === "boolean") entries.push(kv.bool(`tokenizer.ggml.add_${key}_token`, add));
  }
  const template = chatTemplate(tokenizerConfig.chat_template);
  if (template) entries.push(kv.str("tokenizer.chat_template", template));
  return entries;
}
