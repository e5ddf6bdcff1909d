/**
 * Hugging Face checkpoints (config.json + safetensors) as llama.cpp's GGUF sees them: which architectures convert,
 * how config.json maps to GGUF keys, how tensor names map, which tensors each layer must have and their shapes.
 * The rules follow Ollama's `convert/` (convert_llama.go, convert_qwen2.go, convert_qwen3.go) and llama.cpp's
 * convert_hf_to_gguf.py; BERT, Gemma and Phi-3 have their own modules beside this one (checkpoint-bert.ts,
 * checkpoint-gemma.ts, checkpoint-phi3.ts), rope scaling too (checkpoint-rope.ts), and the tensors and keys the
 * decoders share one (checkpoint-decoder.ts). Shared because the edge checks a checkpoint with them before any runner
 * work starts, and the runner's converter writes by them.
 */
import { bertExpectedTensors, bertMetadata, bertTensorName } from "./checkpoint-bert";
import { decoderExpectedTensors, decoderMetadata, qkNormTensors, type TensorShapes } from "./checkpoint-decoder";
import {
  GEMMA_LAYER_NAMES,
  type GemmaParams,
  gemmaExpectedTensors,
  gemmaMetadata,
  gemmaNormOffset,
  gemmaParams,
} from "./checkpoint-gemma";
import { PHI3_LAYER_NAMES, type Phi3Params, phi3ExpectedTensors, phi3Metadata, phi3Params } from "./checkpoint-phi3";
import {
  generatedTensors,
  llama3RopeFactors,
  parseRopeScaling,
  type RopeScaling,
  ropeScalingMetadata,
} from "./checkpoint-rope";
import { ApiError } from "./errors";
import { type GgufMetadataEntry, kv } from "./gguf/writer";
import { CONVERTIBLE_DTYPES, type SafetensorsTensor } from "./safetensors";

export { generatedTensors, llama3RopeFactors };

export type GgufArchitecture = "llama" | "qwen2" | "qwen3" | "bert" | "gemma2" | "gemma3" | "phi3";

/** config.json's `architectures[0]` → the GGUF architecture it converts to (Mistral is a llama to llama.cpp). */
const ARCHITECTURES: Readonly<Record<string, GgufArchitecture>> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "llama",
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
  BertModel: "bert",
  Gemma2ForCausalLM: "gemma2",
  Gemma3ForCausalLM: "gemma3",
  Phi3ForCausalLM: "phi3",
};

/**
 * Whether the tokenizer comes from a SentencePiece tokenizer.model, as llama.cpp's converters choose: always for
 * Gemma 2; for Gemma 3 and Phi-3 when there is one (Phi-4 ships a BPE tokenizer.json only); for the rest only when
 * there is no tokenizer.json.
 */
export function readsSentencePiece(arch: GgufArchitecture, hasTokenizerModel: boolean, hasTokenizerJson: boolean) {
  if (arch === "gemma2") return true;
  if (arch === "gemma3" || arch === "phi3") return hasTokenizerModel || !hasTokenizerJson;
  return hasTokenizerModel && !hasTokenizerJson;
}

export interface CheckpointConfig {
  hfArchitecture: string;
  arch: GgufArchitecture;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  feedForward: number;
  contextLength: number;
  /** config.json's vocab_size; 0 when absent (the tokenizer decides). */
  vocabSize: number;
  /** RMS norm epsilon (llama, qwen), or LayerNorm epsilon (bert). */
  normEpsilon: number;
  /** BERT's token type (segment) count; 0 elsewhere. */
  typeVocab: number;
  ropeTheta: number;
  ropeScaling?: RopeScaling;
  tieEmbeddings: boolean;
  gemma?: GemmaParams;
  phi3?: Phi3Params;
}

/** Bounds on config values: far above any real model, low enough that nothing derived from them overflows. */
const LIMITS = {
  layers: 1024,
  hidden: 1 << 17,
  heads: 1024,
  headDim: 4096,
  feedForward: 1 << 20,
  contextLength: 1 << 24,
  vocabSize: 1 << 22,
};

/** Parses config.json; a 400 naming the field for anything missing, out of range or not supported. */
export function parseCheckpointConfig(text: string): CheckpointConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw bad("config.json is not valid JSON");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad("config.json is not a JSON object");
  const c = raw as Record<string, unknown>;
  const architectures = c.architectures;
  if (!Array.isArray(architectures) || typeof architectures[0] !== "string") throw bad("unknown architecture");
  const hfArchitecture = architectures[0];
  const arch = Object.hasOwn(ARCHITECTURES, hfArchitecture) ? ARCHITECTURES[hfArchitecture] : undefined;
  if (!arch) throw bad(`unsupported architecture ${JSON.stringify(hfArchitecture)}`);

  const int = (key: string, max: number, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > max) {
      throw bad(`config.json ${key} must be an integer from 1 to ${max}, got ${JSON.stringify(c[key] ?? null)}`);
    }
    return v;
  };
  const layers = int("num_hidden_layers", LIMITS.layers);
  const hidden = int("hidden_size", LIMITS.hidden);
  const heads = int("num_attention_heads", LIMITS.heads);
  const kvHeads = int("num_key_value_heads", heads, heads);
  if (heads % kvHeads !== 0) throw bad(`config.json num_attention_heads ${heads} is not a multiple of ${kvHeads}`);
  const explicitHeadDim = c.head_dim !== undefined && c.head_dim !== null;
  if (!explicitHeadDim && hidden % heads !== 0) {
    throw bad(`config.json hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`);
  }
  const headDim = explicitHeadDim ? int("head_dim", LIMITS.headDim) : hidden / heads;
  if (arch !== "bert" && headDim % 2 !== 0)
    throw bad(`config.json head size ${headDim} must be even for rotary embeddings`);
  const vocabSize = c.vocab_size === undefined ? 0 : int("vocab_size", LIMITS.vocabSize);
  const config: CheckpointConfig = {
    hfArchitecture,
    arch,
    layers,
    hidden,
    heads,
    kvHeads,
    headDim,
    feedForward: int("intermediate_size", LIMITS.feedForward),
    contextLength: int("max_position_embeddings", LIMITS.contextLength, DEFAULT_CONTEXT[arch] ?? 4096),
    vocabSize,
    normEpsilon: arch === "bert" ? positive(c, "layer_norm_eps", 1e-12, 1) : positive(c, "rms_norm_eps", 1e-6, 1),
    typeVocab: arch === "bert" ? int("type_vocab_size", 16, 2) : 0,
    // Gemma 3's converter defaults its global rope base to 1M.
    ropeTheta: positive(c, "rope_theta", arch === "gemma3" ? 1_000_000 : 10_000, 1e12),
    // HF's default is true; llama checkpoints that untie them say so.
    tieEmbeddings: c.tie_word_embeddings !== false,
  };
  const scaling = parseRopeScaling(c);
  if (scaling) config.ropeScaling = scaling;
  if (arch === "gemma2" || arch === "gemma3") config.gemma = gemmaParams(c, arch);
  if (arch === "phi3") config.phi3 = phi3Params(c, config);
  return config;
}

const DEFAULT_CONTEXT: Partial<Record<GgufArchitecture, number>> = { bert: 512, gemma3: 131_072 };

function positive(c: Record<string, unknown>, key: string, fallback: number, max: number): number {
  const v = c[key] ?? fallback;
  if (typeof v !== "number" || !(v > 0) || v > max) throw bad(`config.json ${key} must be a number in (0, ${max}]`);
  return v;
}

/** HF name parts → GGUF's, per Ollama's Replacements (llama, qwen2 and qwen3 share them). */
const LAYER_NAMES: Readonly<Record<string, string>> = {
  input_layernorm: "attn_norm",
  "self_attn.q_proj": "attn_q",
  "self_attn.k_proj": "attn_k",
  "self_attn.v_proj": "attn_v",
  "self_attn.o_proj": "attn_output",
  "self_attn.q_norm": "attn_q_norm",
  "self_attn.k_norm": "attn_k_norm",
  "mlp.gate_proj": "ffn_gate",
  "mlp.up_proj": "ffn_up",
  "mlp.down_proj": "ffn_down",
  post_attention_layernorm: "ffn_norm",
};
const GLOBAL_NAMES: Readonly<Record<string, string>> = {
  "model.embed_tokens.weight": "token_embd.weight",
  "model.norm.weight": "output_norm.weight",
  "lm_head.weight": "output.weight",
};

const GEMMA_NAMES = { ...LAYER_NAMES, ...GEMMA_LAYER_NAMES };
const PHI3_NAMES = { ...LAYER_NAMES, ...PHI3_LAYER_NAMES };

function layerNames(arch: GgufArchitecture): Readonly<Record<string, string>> {
  if (arch === "gemma2" || arch === "gemma3") return GEMMA_NAMES;
  return arch === "phi3" ? PHI3_NAMES : LAYER_NAMES;
}

/**
 * The GGUF name of a checkpoint tensor; null for tensors llama.cpp recomputes (rotary `inv_freq`). Anything else is
 * a 400: a converter that guessed would write a model llama.cpp refuses or, worse, runs wrong.
 */
export function ggufTensorName(hfName: string, c: Pick<CheckpointConfig, "arch" | "layers">): string | null {
  const layers = c.layers;
  if (c.arch === "bert") {
    const name = bertTensorName(hfName, layers);
    if (name === undefined) throw bad(`unexpected tensor ${hfName} in the checkpoint`);
    return name;
  }
  // llama.cpp's gemma2 always reuses the embedding; a checkpoint's lm_head (autoawq writes one) is dropped.
  if (c.arch === "gemma2" && hfName === "lm_head.weight") return null;
  if (Object.hasOwn(GLOBAL_NAMES, hfName)) return GLOBAL_NAMES[hfName]!;
  const match = /^model\.layers\.(\d{1,4})\.(.+)\.(weight|bias)$/.exec(hfName);
  if (match && Number(match[1]) < layers) {
    if (match[2]!.endsWith("rotary_emb")) return null;
    const names = layerNames(c.arch);
    const part = Object.hasOwn(names, match[2]!) ? names[match[2]!] : undefined;
    if (part) return `blk.${Number(match[1])}.${part}.${match[3]}`;
  }
  if (/^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/.test(hfName)) return null;
  throw bad(`unexpected tensor ${hfName} in the checkpoint`);
}

/** Every tensor the architecture needs, by GGUF name, with its shape as the checkpoint stores it ([out, in]). */
export function expectedTensors(c: CheckpointConfig, vocabRows: number, hasOutput: boolean): Map<string, number[]> {
  if (c.arch === "bert") return bertExpectedTensors(c, vocabRows);
  if (c.arch === "gemma2" || c.arch === "gemma3") return gemmaExpectedTensors(c, vocabRows, hasOutput);
  if (c.arch === "phi3") return phi3ExpectedTensors(c, vocabRows, hasOutput);
  const q = c.heads * c.headDim;
  const kvWidth = c.kvHeads * c.headDim;
  const atEnd: TensorShapes = [];
  if (c.arch === "qwen2") atEnd.push(["attn_q.bias", [q]], ["attn_k.bias", [kvWidth]], ["attn_v.bias", [kvWidth]]);
  if (c.arch === "qwen3") atEnd.push(...qkNormTensors(c));
  return decoderExpectedTensors(c, vocabRows, hasOutput || !c.tieEmbeddings, { atEnd });
}

/**
 * Checks a checkpoint's tensors (GGUF names → shapes) against the config: every expected tensor present with its
 * shape, nothing unexpected, embedding rows matching vocab_size (llama.cpp pads vocabularies; rows beyond the
 * tokenizer's count are the padding). Returns the embedding's row count (the GGUF vocabulary size).
 */
export function checkCheckpointTensors(c: CheckpointConfig, tensors: ReadonlyMap<string, readonly number[]>): number {
  const embedding = tensors.get("token_embd.weight");
  if (!embedding) throw bad("tensor model.embed_tokens.weight is missing");
  const rows = embedding[0] ?? 0;
  if (c.vocabSize > 0 && rows !== c.vocabSize) {
    throw bad(`model.embed_tokens.weight has ${rows} rows but config.json vocab_size is ${c.vocabSize}`);
  }
  const expected = expectedTensors(c, rows, tensors.has("output.weight"));
  for (const [name, shape] of expected) {
    const found = tensors.get(name);
    if (!found) throw bad(`tensor ${name} is missing from the checkpoint`);
    if (found.length !== shape.length || found.some((d, i) => d !== shape[i])) {
      throw bad(`tensor ${name} has shape [${found.join(", ")}], config.json implies [${shape.join(", ")}]`);
    }
  }
  for (const name of tensors.keys()) if (!expected.has(name)) throw bad(`unexpected tensor ${name} in the checkpoint`);
  return rows;
}

/**
 * For llama's attention Q and K: the head count their rows are permuted by (HF stores rotary halves, llama.cpp
 * interleaved pairs); null for any other tensor or architecture (qwen uses NeoX rope and keeps HF's order).
 */
export function permutedHeads(
  c: Pick<CheckpointConfig, "arch" | "heads" | "kvHeads">,
  ggufName: string,
): number | null {
  if (c.arch !== "llama") return null;
  if (ggufName.endsWith(".attn_q.weight")) return c.heads;
  if (ggufName.endsWith(".attn_k.weight")) return c.kvHeads;
  return null;
}

/** The architecture's GGUF keys (general.* and `<arch>.*`; the tokenizer's come from the converter). */
export function architectureMetadata(c: CheckpointConfig, vocabRows: number, pooling?: number): GgufMetadataEntry[] {
  if (c.arch === "bert") return bertMetadata(c, pooling);
  if (c.arch === "gemma2" || c.arch === "gemma3") return gemmaMetadata(c, vocabRows);
  if (c.arch === "phi3") return phi3Metadata(c, vocabRows);
  const a = c.arch;
  const entries = [
    ...decoderMetadata(c, vocabRows),
    kv.f32(`${a}.rope.freq_base`, c.ropeTheta),
    kv.f32(`${a}.attention.layer_norm_rms_epsilon`, c.normEpsilon),
  ];
  if (a === "llama") entries.push(kv.u32("llama.rope.dimension_count", c.headDim));
  if (a === "qwen3" || c.headDim !== c.hidden / c.heads) {
    entries.push(kv.u32(`${a}.attention.key_length`, c.headDim), kv.u32(`${a}.attention.value_length`, c.headDim));
  }
  entries.push(...ropeScalingMetadata(a, c.ropeScaling));
  return entries;
}

/** What is added to every value of a tensor as it converts: Gemma's norm offset, else 0. */
export function valueOffset(c: CheckpointConfig, ggufName: string): number {
  return c.arch === "gemma2" || c.arch === "gemma3" ? gemmaNormOffset(ggufName) : 0;
}

function bad(message: string): ApiError {
  return new ApiError(400, message);
}

/** One tensor to convert: its GGUF name and where its bytes are. */
export interface CheckpointTensor {
  name: string;
  /** The `files` name of the shard holding it. */
  file: string;
  dtype: SafetensorsTensor["dtype"];
  /** As stored ([out, in]). */
  shape: number[];
  start: number;
  end: number;
}

export interface CheckpointPlan {
  config: CheckpointConfig;
  /** In the order they are written: the embedding, the layers in order, the output norm and head. */
  tensors: CheckpointTensor[];
  /** The embedding's rows: the GGUF vocabulary size (the tokenizer is padded up to it). */
  vocabRows: number;
}

/**
 * Everything cheap to know about a checkpoint before converting it: config.json parsed, the shards' tensors mapped to
 * GGUF names and checked against the config, and the index (if any) checked against what was uploaded.
 */
export function planCheckpoint(
  configText: string,
  indexText: string | undefined,
  headers: ReadonlyMap<string, { tensors: readonly Omit<CheckpointTensor, "file">[] }>,
): CheckpointPlan {
  const config = parseCheckpointConfig(configText);
  if (indexText !== undefined) checkIndex(indexText, headers);
  const byName = new Map<string, CheckpointTensor>();
  for (const [file, header] of headers) {
    for (const t of header.tensors) {
      const name = ggufTensorName(t.name, config);
      if (name === null) continue;
      if (!CONVERTIBLE_DTYPES.has(t.dtype)) {
        throw bad(`tensor ${t.name} has dtype ${t.dtype}; only F32, F16 and BF16 can be converted`);
      }
      if (byName.has(name)) throw bad(`tensor ${t.name} appears in more than one shard`);
      byName.set(name, { ...t, name, file });
    }
  }
  const vocabRows = checkCheckpointTensors(config, new Map([...byName].map(([n, t]) => [n, t.shape])));
  const order = (name: string) => {
    if (name === "token_embd.weight") return -1;
    const layer = /^blk\.(\d+)\./.exec(name);
    return layer ? Number(layer[1]) : config.layers;
  };
  const tensors = [...byName.values()].sort((a, b) => order(a.name) - order(b.name));
  return { config, tensors, vocabRows };
}

/** model.safetensors.index.json: every shard it names was uploaded and holds the tensors the index puts there. */
function checkIndex(text: string, headers: ReadonlyMap<string, { tensors: readonly { name: string }[] }>): void {
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch {
    throw bad("model.safetensors.index.json is not valid JSON");
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    throw bad("model.safetensors.index.json has no weight_map object");
  }
  const where = new Map<string, string>();
  for (const [file, header] of headers) for (const t of header.tensors) where.set(t.name, file);
  for (const [tensor, file] of Object.entries(map)) {
    if (typeof file !== "string") throw bad(`model.safetensors.index.json maps ${tensor} to a non-string`);
    if (!headers.has(file)) throw bad(`model.safetensors.index.json names shard ${file}, which was not uploaded`);
    if (where.get(tensor) !== file) throw bad(`tensor ${tensor} is not in ${file} as the index says`);
  }
}
