/**
 * A Hugging Face tokenizer (tokenizer.json, tokenizer_config.json, generation_config.json) as GGUF `tokenizer.*`
 * keys, by the rules of Ollama's convert/tokenizer.go: the vocabulary sorted by id with added tokens over it
 * (special → CONTROL, other added → USER_DEFINED), scores = ids, merges in either of tokenizer.json's two forms,
 * `tokenizer.ggml.pre` chosen from a sha256 of the Split pre-tokenizers' regexes, special token ids and add_*_token
 * flags from tokenizer_config.json, eos ids lists from generation_config.json, padding up to the embedding's rows.
 */
import { createHash } from "node:crypto";
import { ApiError } from "@corral/protocol/errors";
import { type GgufMetadataEntry, kv } from "@corral/protocol/gguf/writer";

const TOKEN_NORMAL = 1;
const TOKEN_CONTROL = 3;
const TOKEN_USER_DEFINED = 4;

/** sha256 of the concatenated Split regexes → llama.cpp's pre-tokenizer name (Ollama's table). */
const PRE_TOKENIZERS: Readonly<Record<string, string>> = {
  d98f9631be1e9607a9848c26c1f9eac1aa9fc21ac6ba82a2fc0741af9780a48f: "llama-bpe",
  "03df5c5863ad70781dcfdef491ead25140f895fe8010964be0daefe27be32b02": "deepseek-llm",
  "21cde974d587f0d54dc8d56b183cc1e6239600172035c68fbd6d4b9f8da0576e": "deepseek-coder",
  "1ff7f41064896984db5d1bb6ff64fa4bc29007d08c1b439e505b7392777a319e": "qwen2",
};

/** Ollama's special token types and the GGUF key part of each. */
export const SPECIAL_KEYS: readonly [string, string][] = [
  ["bos", "bos"],
  ["eos", "eos"],
  ["unk", "unknown"],
  ["sep", "seperator"],
  ["pad", "padding"],
  ["cls", "cls"],
  ["mask", "mask"],
];

export interface TokenizerFiles {
  tokenizer: string;
  tokenizerConfig?: string;
  generationConfig?: string;
}

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

/**
 * The tokenizer keys for a model whose embedding has `vocabRows` rows: byte-level BPE as `gpt2`, WordPiece (BERT,
 * whose `typeVocab` is its token type count) as `bert`.
 */
export function tokenizerMetadata(files: TokenizerFiles, vocabRows: number, typeVocab = 0): GgufMetadataEntry[] {
  const tok = objectOf(parseJson(files.tokenizer, "tokenizer.json"), "tokenizer.json");
  const model = objectOf(tok.model, "tokenizer.json model");
  const added = addedTokens(tok.added_tokens);
  if (model.type === "WordPiece") return wordPieceMetadata(model, added, vocabRows, typeVocab);
  if (model.type !== "BPE") {
    throw new ApiError(
      400,
      `tokenizer.json model type ${JSON.stringify(model.type)} is not supported (BPE, WordPiece)`,
    );
  }
  const { tokens, types } = vocabulary(objectOf(model.vocab, "tokenizer.json model.vocab"), added);
  if (tokens.length > vocabRows) {
    throw new ApiError(400, `the tokenizer has ${tokens.length} tokens but the embedding only ${vocabRows} rows`);
  }
  const scores = tokens.map((_, i) => i);
  for (let i = tokens.length; i < vocabRows; i++) {
    tokens.push(`[PAD${i - scores.length}]`);
    types.push(TOKEN_USER_DEFINED);
  }
  while (scores.length < vocabRows) scores.push(-1);
  const entries = [
    kv.str("tokenizer.ggml.model", "gpt2"),
    kv.str("tokenizer.ggml.pre", preTokenizer(tok.pre_tokenizer)),
    kv.strArr("tokenizer.ggml.tokens", tokens),
    kv.f32Arr("tokenizer.ggml.scores", scores),
    kv.i32Arr("tokenizer.ggml.token_type", types),
  ];
  const merges = mergesOf(model.merges);
  if (merges.length > 0) entries.push(kv.strArr("tokenizer.ggml.merges", merges));
  if (files.tokenizerConfig !== undefined) entries.push(...configEntries(files, added));
  return entries;
}

/**
 * WordPiece as llama.cpp's `bert` tokenizer takes it (convert_hf_to_gguf.py BertModel): a word start gets the
 * phantom space `▁`, a `##` continuation loses its marker, `[...]` specials stay as they are; [CLS] is added in
 * front and [SEP] at the end.
 */
function wordPieceMetadata(
  model: Record<string, unknown>,
  added: AddedToken[],
  vocabRows: number,
  typeVocab: number,
): GgufMetadataEntry[] {
  const { tokens, types } = vocabulary(objectOf(model.vocab, "tokenizer.json model.vocab"), added);
  if (tokens.length !== vocabRows) {
    throw new ApiError(400, `the tokenizer has ${tokens.length} tokens but the embedding ${vocabRows} rows`);
  }
  const idOf = new Map(tokens.map((t, i) => [t, i]));
  const phantom = tokens.map((t) =>
    t.startsWith("[") && t.endsWith("]") ? t : t.startsWith("##") ? t.slice(2) : `\u2581${t}`,
  );
  const entries = [
    kv.str("tokenizer.ggml.model", "bert"),
    kv.strArr("tokenizer.ggml.tokens", phantom),
    kv.i32Arr("tokenizer.ggml.token_type", types),
    kv.u32("tokenizer.ggml.token_type_count", typeVocab),
    kv.bool("tokenizer.ggml.add_bos_token", true),
    kv.bool("tokenizer.ggml.add_eos_token", true),
  ];
  for (const [token, key] of [
    ["[CLS]", "bos"],
    ["[SEP]", "eos"],
    ["[CLS]", "cls"],
    ["[SEP]", "seperator"],
    ["[PAD]", "padding"],
    ["[UNK]", "unknown"],
    ["[MASK]", "mask"],
  ] as const) {
    const id = idOf.get(token);
    if (id !== undefined) entries.push(kv.u32(`tokenizer.ggml.${key}_token_id`, id));
  }
  return entries;
}

function vocabulary(vocab: Record<string, unknown>, added: AddedToken[]): { tokens: string[]; types: number[] } {
  const byId = new Map<number, { content: string; type: number }>();
  for (const [content, id] of Object.entries(vocab)) {
    if (!isId(id)) throw new ApiError(400, `tokenizer.json token ${JSON.stringify(content)} has an invalid id`);
    byId.set(id, { content, type: TOKEN_NORMAL });
  }
  for (const t of added) byId.set(t.id, { content: t.content, type: t.special ? TOKEN_CONTROL : TOKEN_USER_DEFINED });
  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < byId.size; id++) {
    const token = byId.get(id);
    if (!token) throw new ApiError(400, `tokenizer.json has no token with id ${id} (ids must be 0..${byId.size - 1})`);
    tokens.push(token.content);
    types.push(token.type);
  }
  return { tokens, types };
}

function addedTokens(value: unknown): AddedToken[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ApiError(400, "tokenizer.json added_tokens is not an array");
  return value.map((t) => {
    const o = objectOf(t, "tokenizer.json added token");
    if (!isId(o.id) || typeof o.content !== "string") {
      throw new ApiError(400, "tokenizer.json has an added token without an id or content");
    }
    return { id: o.id, content: o.content, special: o.special === true };
  });
}

/** `["a b", ...]` or `[["a", "b"], ...]`, both written as "a b". */
function mergesOf(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ApiError(400, "tokenizer.json merges is not an array");
  return value.map((m) => {
    if (typeof m === "string") return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
      return `${m[0]} ${m[1]}`;
    }
    throw new ApiError(400, "could not parse tokenizer merges. expected []string or [][]string");
  });
}

function preTokenizer(value: unknown): string {
  const hash = createHash("sha256");
  const list = (value as { pretokenizers?: unknown } | null | undefined)?.pretokenizers;
  for (const p of Array.isArray(list) ? list : []) {
    const o = p as { type?: unknown; pattern?: { Regex?: unknown } } | null;
    if (o?.type === "Split" && typeof o.pattern?.Regex === "string" && o.pattern.Regex !== "") {
      hash.update(o.pattern.Regex);
    }
  }
  return PRE_TOKENIZERS[hash.digest("hex")] ?? "default";
}

function configEntries(files: TokenizerFiles, added: AddedToken[]): GgufMetadataEntry[] {
  const config = objectOf(parseJson(files.tokenizerConfig!, "tokenizer_config.json"), "tokenizer_config.json");
  const generation =
    files.generationConfig === undefined
      ? {}
      : objectOf(parseJson(files.generationConfig, "generation_config.json"), "generation_config.json");
  const entries: GgufMetadataEntry[] = [];
  const template = chatTemplate(config.chat_template);
  if (template) entries.push(kv.str("tokenizer.chat_template", template));
  const idOf = new Map(added.map((t) => [t.content, t.id]));
  for (const [type, key] of SPECIAL_KEYS) {
    const raw = config[`${type}_token`];
    const content = typeof raw === "string" ? raw : (raw as { content?: unknown } | null)?.content;
    const id = typeof content === "string" ? idOf.get(content) : undefined;
    if (id === undefined) continue;
    entries.push(kv.bool(`tokenizer.ggml.add_${key}_token`, config[`add_${type}_token`] === true));
    entries.push(kv.u32(`tokenizer.ggml.${key}_token_id`, id));
    const ids = generation[`${type}_token_id`];
    if (Array.isArray(ids) && ids.length > 0 && ids.every(isId)) {
      entries.push(kv.i32Arr(`tokenizer.ggml.${key}_token_ids`, ids));
    }
  }
  return entries;
}

/** A string, or a list of named templates of which "default" is taken. */
export function chatTemplate(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    const named = value.find((t) => (t as { name?: unknown } | null)?.name === "default") as
      | { template?: unknown }
      | undefined;
    return typeof named?.template === "string" ? named.template : undefined;
  }
  if (value === undefined || value === null) return undefined;
  throw new ApiError(400, "invalid chat_template in tokenizer_config.json");
}

export function isId(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 1 << 22;
}

export function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, `${file} is not valid JSON`);
  }
}

export function objectOf(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ApiError(400, `${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}
