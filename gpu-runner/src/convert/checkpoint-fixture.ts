/**
 * Tiny Hugging Face checkpoints for tests and the convert benchmark, each with the GGUF the converter rules give for
 * it, built independently: the weights are drawn in llama.cpp's layout and written to the GGUF as they are (with the
 * tiny model's own F16 encoder), while the checkpoint gets them in HF's layout (Q/K rows un-permuted, HF names, F32
 * or BF16, optionally sharded with an index, optionally with tied embeddings). Same options → same bytes. The
 * seeded draws and the reference GGUF's layout are shared with the other fixtures (sentencepiece, adapter).
 */
import { GgmlType } from "@corral/protocol/gguf/types";
import { type GgufMetadataEntry, type GgufTensorInput, kv, writeGguf } from "@corral/protocol/gguf/writer";
import { bf16Bytes, f32Bytes, type SafetensorsInput, writeSafetensors } from "@corral/protocol/safetensors-testkit";
import { TINY_CHAT_TEMPLATE } from "../tiny-model/chat-template";
import { encodeTensorData, mulberry32, uniformValues } from "../tiny-model/tensor-data";
import { END_OF_TEXT, IM_END, tinyVocabulary, tokenizerMetadata } from "../tiny-model/tokenizer";

export type CheckpointDtype = "F32" | "BF16";

export interface CheckpointOptions {
  architecture?: "LlamaForCausalLM" | "MistralForCausalLM" | "Qwen2ForCausalLM" | "Qwen3ForCausalLM";
  dtype?: CheckpointDtype;
  /** Split the weights over this many `model-0000i-of-0000n.safetensors` files with an index. Default 1. */
  shards?: number;
  /** No lm_head: the output reuses the embedding. */
  tied?: boolean;
  /** Merges as `["a", "b"]` pairs (newer tokenizers) instead of "a b" strings. */
  pairMerges?: boolean;
  seed?: number;
  /** Width, depth and feed-forward size; the tiny model's by default. */
  hidden?: number;
  layers?: number;
  feedForward?: number;
}

export interface Checkpoint {
  /** File name → bytes, as a client uploads them. */
  files: Map<string, Uint8Array>;
  /** The GGUF conversion must produce (tensors and the keys they are checked by). */
  reference: Uint8Array;
}

const HEADS = 4;
const KV_HEADS = 2;
const encoder = new TextEncoder();

const GGUF_ARCH = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "llama",
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
} as const;

/** HF row (h, s, j) holds llama.cpp's row (h, j, s): the inverse of the converter's permutation, written out. */
export function toHfRows(values: Float32Array, rows: number, heads: number): Float32Array {
  const cols = values.length / rows;
  const headRows = rows / heads;
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) {
    const h = Math.floor(r / headRows);
    const within = r % headRows;
    const s = within < headRows / 2 ? 0 : 1;
    const j = within % (headRows / 2);
    const ggufRow = h * headRows + 2 * j + s;
    out.set(values.subarray(ggufRow * cols, (ggufRow + 1) * cols), r * cols);
  }
  return out;
}

/**
 * Seeded draws as a checkpoint of `dtype` holds them (BF16 rounds), so a reference GGUF starts from the same numbers
 * the converter reads.
 */
export function checkpointValues(seed: number, dtype: CheckpointDtype): (count: number, scale: number) => Float32Array {
  const next = mulberry32(seed);
  return (count, scale) => {
    const v = uniformValues(next, count, scale);
    return dtype === "BF16"
      ? new Float32Array(new Uint32Array(f32Bytes(v).buffer).map((b) => b & 0xffff0000).buffer)
      : v;
  };
}

/** [GGUF name, HF name, shape as the checkpoint stores it ([out, in] or [n]), values as the GGUF holds them, …]. */
export type FixtureTensor = readonly [string, string, number[], Float32Array, ...Float32Array[]];

/**
 * The GGUF the converter must write for a tiny checkpoint, built without it: vectors in F32, matrices in F16 (BF16
 * from a BF16 checkpoint), general.architecture and general.file_type ahead of the architecture's `keys`.
 */
export function referenceGguf(
  arch: string,
  dtype: CheckpointDtype,
  tensors: readonly FixtureTensor[],
  keys: GgufMetadataEntry[],
): Uint8Array {
  const referenceTensors: GgufTensorInput[] = tensors.map(([name, , shape, values]) => ({
    name,
    dims: [...shape].reverse(),
    type: shape.length === 1 ? GgmlType.F32 : dtype === "BF16" ? GgmlType.BF16 : GgmlType.F16,
    data:
      shape.length === 1 ? f32Bytes(values) : dtype === "BF16" ? bf16Bytes(values) : encodeTensorData(values, "f16"),
  }));
  const fileType = kv.u32("general.file_type", dtype === "BF16" ? 32 : 1);
  return writeGguf({ metadata: [kv.str("general.architecture", arch), fileType, ...keys], tensors: referenceTensors });
}

/** A tiny decoder's shape keys (context 4096) as the reference GGUFs write them. */
export function referenceShapeKeys(
  arch: string,
  shape: { hidden: number; layers: number; ff: number; heads: number; kvHeads: number },
): GgufMetadataEntry[] {
  return [
    kv.u32(`${arch}.context_length`, 4096),
    kv.u32(`${arch}.embedding_length`, shape.hidden),
    kv.u32(`${arch}.block_count`, shape.layers),
    kv.u32(`${arch}.feed_forward_length`, shape.ff),
    kv.u32(`${arch}.attention.head_count`, shape.heads),
    kv.u32(`${arch}.attention.head_count_kv`, shape.kvHeads),
  ];
}

export function tinyCheckpoint(o: CheckpointOptions = {}): Checkpoint {
  const architecture = o.architecture ?? "LlamaForCausalLM";
  const arch = GGUF_ARCH[architecture];
  const dtype = o.dtype ?? "F32";
  const hidden = o.hidden ?? 64;
  const layers = o.layers ?? 2;
  const ff = o.feedForward ?? 128;
  const headDim = hidden / HEADS;
  const vocab = tinyVocabulary();
  const draw = checkpointValues(o.seed ?? 11, dtype);
  const ones = (n: number) => new Float32Array(n).fill(1);

  // [GGUF name, HF name, HF shape [out, in] or [n], values in llama.cpp's row order]
  const tensors: [string, string, number[], Float32Array][] = [];
  tensors.push([
    "token_embd.weight",
    "model.embed_tokens.weight",
    [vocab.tokens.length, hidden],
    draw(vocab.tokens.length * hidden, 1),
  ]);
  for (let i = 0; i < layers; i++) {
    const m = (gguf: string, hf: string, out: number, inp: number) =>
      tensors.push([`blk.${i}.${gguf}`, `model.layers.${i}.${hf}`, [out, inp], draw(out * inp, Math.sqrt(3 / inp))]);
    const v = (gguf: string, hf: string, n: number, values: Float32Array = ones(n)) =>
      tensors.push([`blk.${i}.${gguf}`, `model.layers.${i}.${hf}`, [n], values]);
    v("attn_norm.weight", "input_layernorm.weight", hidden);
    m("attn_q.weight", "self_attn.q_proj.weight", hidden, hidden);
    m("attn_k.weight", "self_attn.k_proj.weight", KV_HEADS * headDim, hidden);
    m("attn_v.weight", "self_attn.v_proj.weight", KV_HEADS * headDim, hidden);
    if (arch === "qwen2") {
      v("attn_q.bias", "self_attn.q_proj.bias", hidden, draw(hidden, 0.1));
      v("attn_k.bias", "self_attn.k_proj.bias", KV_HEADS * headDim, draw(KV_HEADS * headDim, 0.1));
      v("attn_v.bias", "self_attn.v_proj.bias", KV_HEADS * headDim, draw(KV_HEADS * headDim, 0.1));
    }
    if (arch === "qwen3") {
      v("attn_q_norm.weight", "self_attn.q_norm.weight", headDim);
      v("attn_k_norm.weight", "self_attn.k_norm.weight", headDim);
    }
    m("attn_output.weight", "self_attn.o_proj.weight", hidden, hidden);
    v("ffn_norm.weight", "post_attention_layernorm.weight", hidden);
    m("ffn_gate.weight", "mlp.gate_proj.weight", ff, hidden);
    m("ffn_up.weight", "mlp.up_proj.weight", ff, hidden);
    m("ffn_down.weight", "mlp.down_proj.weight", hidden, ff);
  }
  tensors.push(["output_norm.weight", "model.norm.weight", [hidden], ones(hidden)]);
  if (!o.tied) {
    tensors.push([
      "output.weight",
      "lm_head.weight",
      [vocab.tokens.length, hidden],
      draw(vocab.tokens.length * hidden, 2 * Math.sqrt(3 / hidden)),
    ]);
  }

  const hfTensors: (SafetensorsInput & { gguf: string })[] = tensors.map(([gguf, name, shape, values]) => {
    const heads =
      arch !== "llama" ? 0 : gguf.endsWith("attn_q.weight") ? HEADS : gguf.endsWith("attn_k.weight") ? KV_HEADS : 0;
    const hfValues = heads ? toHfRows(values, shape[0]!, heads) : values;
    return { gguf, name, shape, dtype, data: dtype === "BF16" ? bf16Bytes(hfValues) : f32Bytes(hfValues) };
  });

  const files = new Map<string, Uint8Array>();
  const shards = o.shards ?? 1;
  if (shards === 1) files.set("model.safetensors", writeSafetensors(hfTensors));
  else {
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`;
      const part = hfTensors.filter((_, i) => i % shards === s);
      for (const t of part) weightMap[t.name] = file;
      files.set(file, writeSafetensors(part));
    }
    files.set("model.safetensors.index.json", encoder.encode(JSON.stringify({ metadata: {}, weight_map: weightMap })));
  }
  files.set(
    "config.json",
    encoder.encode(JSON.stringify(hfConfig(architecture, hidden, layers, ff, vocab.tokens.length, o.tied === true))),
  );
  files.set("tokenizer.json", encoder.encode(JSON.stringify(tokenizerJson(o.pairMerges === true))));
  files.set("tokenizer_config.json", encoder.encode(JSON.stringify(tokenizerConfig())));

  const reference = referenceGguf(arch, dtype, tensors, [
    ...referenceShapeKeys(arch, { hidden, layers, ff, heads: HEADS, kvHeads: KV_HEADS }),
    kv.f32(`${arch}.rope.freq_base`, 10000),
    kv.f32(`${arch}.attention.layer_norm_rms_epsilon`, 1e-5),
    ...tokenizerMetadata(vocab),
  ]);
  return { files, reference };
}

function hfConfig(architecture: string, hidden: number, layers: number, ff: number, vocabSize: number, tied: boolean) {
  return {
    architectures: [architecture],
    model_type: GGUF_ARCH[architecture as keyof typeof GGUF_ARCH],
    hidden_size: hidden,
    num_hidden_layers: layers,
    num_attention_heads: HEADS,
    num_key_value_heads: KV_HEADS,
    intermediate_size: ff,
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    vocab_size: vocabSize,
    tie_word_embeddings: tied,
    torch_dtype: "float32",
  };
}

/** The tiny model's vocabulary as a byte-level BPE tokenizer.json; the CONTROL tokens as special added tokens. */
function tokenizerJson(pairMerges: boolean) {
  const vocab = tinyVocabulary();
  const special = new Set(vocab.tokens.filter((_, i) => vocab.tokenTypes[i] === 3));
  return {
    version: "1.0",
    added_tokens: vocab.tokens.flatMap((content, id) =>
      special.has(content)
        ? [{ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }]
        : [],
    ),
    pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "ByteLevel", add_prefix_space: false }] },
    model: {
      type: "BPE",
      vocab: Object.fromEntries(vocab.tokens.filter((t) => !special.has(t)).map((t) => [t, vocab.tokens.indexOf(t)])),
      merges: pairMerges ? vocab.merges.map((m) => m.split(" ")) : vocab.merges,
    },
  };
}

function tokenizerConfig() {
  return {
    bos_token: END_OF_TEXT,
    eos_token: IM_END,
    pad_token: END_OF_TEXT,
    add_bos_token: false,
    add_eos_token: false,
    chat_template: TINY_CHAT_TEMPLATE,
  };
}
