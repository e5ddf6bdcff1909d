/**
 * BERT (`BertModel`, and the `bert.`-prefixed names of BertFor* checkpoints) as llama.cpp's `bert` architecture,
 * by the rules of Ollama's convert_bert.go and llama.cpp's BertModel converter: an encoder with learned position and
 * token-type embeddings, biased projections and post-LayerNorms; mean pooling, so `/api/embed` gets one vector.
 */
import type { CheckpointConfig } from "./checkpoint";
import { type GgufMetadataEntry, kv } from "./gguf/writer";

/** llama.cpp's LLAMA_POOLING_TYPE_MEAN and _CLS. */
const POOLING_MEAN = 1;
const POOLING_CLS = 2;

/**
 * The pooling a sentence-transformers checkpoint declares (modules.json names its Pooling module's directory, whose
 * config.json says cls or mean), as Ollama's convert_bert.go reads it; mean when there is none.
 */
export function bertPooling(files: { read(name: string): string | undefined }): number {
  const modules = parseObjectArray(files.read("modules.json"));
  const pooling = modules.find((m) => m.type === "sentence_transformers.models.Pooling");
  if (typeof pooling?.path !== "string") return POOLING_MEAN;
  const config = parseObject(files.read(`${pooling.path}/config.json`));
  return config?.pooling_mode_cls_token === true ? POOLING_CLS : POOLING_MEAN;
}

function parseObjectArray(text: string | undefined): Record<string, unknown>[] {
  try {
    const value: unknown = text === undefined ? [] : JSON.parse(text);
    return Array.isArray(value) ? value.filter((v) => typeof v === "object" && v !== null) : [];
  } catch {
    return [];
  }
}

function parseObject(text: string | undefined): Record<string, unknown> | undefined {
  try {
    const value: unknown = text === undefined ? undefined : JSON.parse(text);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The files besides config.json that decide BERT's pooling (the edge sends them to the runner). */
export function isBertPoolingFile(name: string): boolean {
  return name === "modules.json" || /^\d+_Pooling\/config\.json$/.test(name);
}

const GLOBAL: Readonly<Record<string, string>> = {
  "embeddings.word_embeddings.weight": "token_embd.weight",
  "embeddings.position_embeddings.weight": "position_embd.weight",
  "embeddings.token_type_embeddings.weight": "token_types.weight",
  "embeddings.LayerNorm.weight": "token_embd_norm.weight",
  "embeddings.LayerNorm.bias": "token_embd_norm.bias",
};
const LAYER: Readonly<Record<string, string>> = {
  "attention.self.query": "attn_q",
  "attention.self.key": "attn_k",
  "attention.self.value": "attn_v",
  "attention.output.dense": "attn_output",
  "attention.output.LayerNorm": "attn_output_norm",
  "intermediate.dense": "ffn_up",
  "output.dense": "ffn_down",
  "output.LayerNorm": "layer_output_norm",
};

/** The GGUF name of a BERT tensor; null for what llama.cpp does not use (pooler, position_ids); undefined: unknown. */
export function bertTensorName(hfName: string, layers: number): string | null | undefined {
  const name = hfName.startsWith("bert.") ? hfName.slice("bert.".length) : hfName;
  if (Object.hasOwn(GLOBAL, name)) return GLOBAL[name]!;
  if (name === "embeddings.position_ids" || name.startsWith("pooler.")) return null;
  const match = /^encoder\.layer\.(\d{1,4})\.(.+)\.(weight|bias)$/.exec(name);
  if (!match || Number(match[1]) >= layers) return undefined;
  const part = Object.hasOwn(LAYER, match[2]!) ? LAYER[match[2]!] : undefined;
  return part ? `blk.${Number(match[1])}.${part}.${match[3]}` : undefined;
}

export function bertExpectedTensors(c: CheckpointConfig, vocabRows: number): Map<string, number[]> {
  const h = c.hidden;
  const expected = new Map<string, number[]>([
    ["token_embd.weight", [vocabRows, h]],
    ["position_embd.weight", [c.contextLength, h]],
    ["token_types.weight", [c.typeVocab, h]],
    ["token_embd_norm.weight", [h]],
    ["token_embd_norm.bias", [h]],
  ]);
  for (let i = 0; i < c.layers; i++) {
    for (const [name, shape] of [
      ["attn_q", [h, h]],
      ["attn_k", [h, h]],
      ["attn_v", [h, h]],
      ["attn_output", [h, h]],
      ["attn_output_norm", [h, h]],
      ["ffn_up", [c.feedForward, h]],
      ["ffn_down", [h, c.feedForward]],
      ["layer_output_norm", [h, h]],
    ] as const) {
      // Norms are vectors; every other weight is a matrix; each has a bias of its output size.
      const isNorm = name.endsWith("_norm");
      expected.set(`blk.${i}.${name}.weight`, isNorm ? [h] : [...shape]);
      expected.set(`blk.${i}.${name}.bias`, [isNorm ? h : shape[0]]);
    }
  }
  return expected;
}

export function bertMetadata(c: CheckpointConfig, pooling = POOLING_MEAN): GgufMetadataEntry[] {
  return [
    kv.str("general.architecture", "bert"),
    kv.u32("bert.context_length", c.contextLength),
    kv.u32("bert.embedding_length", c.hidden),
    kv.u32("bert.feed_forward_length", c.feedForward),
    kv.u32("bert.block_count", c.layers),
    kv.u32("bert.attention.head_count", c.heads),
    kv.f32("bert.attention.layer_norm_epsilon", c.normEpsilon),
    kv.bool("bert.attention.causal", false),
    kv.u32("bert.pooling_type", pooling),
  ];
}
