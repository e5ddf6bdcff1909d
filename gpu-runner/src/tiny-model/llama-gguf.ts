import { GgmlType } from "../../../protocol/src/gguf/types";
import { type GgufTensorInput, kv, writeGguf } from "../../../protocol/src/gguf/writer";
import { encodeTensorData, FILE_TYPE_OF, GGML_TYPE_OF, type WeightType } from "./tensor-data";
import { tinyVocabulary, tokenizerMetadata } from "./tokenizer";

/** Shape of a built-in `llama` model. */
export interface LlamaHyperparameters {
  readonly embedding: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly feedForward: number;
  /** Long enough for function-calling system prompts, which are long with a byte-level vocabulary. */
  readonly contextLength: number;
  readonly rmsNormEpsilon: number;
  readonly ropeFreqBase: number;
}

/** 64-wide, 2 layers, grouped-query attention (4 query heads of 16, 2 KV heads): small but a real llama. */
export const TINY_MODEL_HYPERPARAMETERS: LlamaHyperparameters = {
  embedding: 64,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  feedForward: 128,
  contextLength: 8192,
  rmsNormEpsilon: 1e-5,
  ropeFreqBase: 10000,
};

export interface LlamaLayerWeights {
  attnNorm: Float32Array;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  o: Float32Array;
  ffnNorm: Float32Array;
  gate: Float32Array;
  up: Float32Array;
  down: Float32Array;
}

/** Matrices are stored row-major over their output dimension: element (out, in) at `out * in_dim + in`. */
export interface LlamaWeights {
  tokenEmbedding: Float32Array;
  outputNorm: Float32Array;
  output: Float32Array;
  layers: LlamaLayerWeights[];
}

/** ggml dims ([in, out], ne0 first) of each tensor, in the order llama.cpp's converters write them. */
export function llamaTensorShapes(hp: LlamaHyperparameters, vocabSize: number) {
  const headDim = hp.embedding / hp.heads;
  const kvWidth = headDim * hp.kvHeads;
  return {
    tokenEmbedding: [hp.embedding, vocabSize],
    outputNorm: [hp.embedding],
    output: [hp.embedding, vocabSize],
    layer: {
      attnNorm: [hp.embedding],
      q: [hp.embedding, hp.embedding],
      k: [hp.embedding, kvWidth],
      v: [hp.embedding, kvWidth],
      o: [hp.embedding, hp.embedding],
      ffnNorm: [hp.embedding],
      gate: [hp.embedding, hp.feedForward],
      up: [hp.embedding, hp.feedForward],
      down: [hp.feedForward, hp.embedding],
    } satisfies Record<keyof LlamaLayerWeights, number[]>,
  };
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export interface LlamaGgufInput {
  name: string;
  description: string;
  hyperparameters: LlamaHyperparameters;
  weights: LlamaWeights;
  /** Type of the 2-D matrices; norms are always F32. */
  weightType: WeightType;
  /** The tokenizer prepends BOS (as llama and gemma models do); default false. */
  addBos?: boolean;
}

const LAYER_TENSOR_NAMES: Record<keyof LlamaLayerWeights, string> = {
  attnNorm: "attn_norm",
  q: "attn_q",
  k: "attn_k",
  v: "attn_v",
  o: "attn_output",
  ffnNorm: "ffn_norm",
  gate: "ffn_gate",
  up: "ffn_up",
  down: "ffn_down",
};

/** A complete `llama` GGUF with the built-in tokenizer. */
export function writeLlamaGguf(input: LlamaGgufInput): Uint8Array {
  const hp = input.hyperparameters;
  if (hp.embedding % hp.heads !== 0 || hp.heads % hp.kvHeads !== 0) throw new Error("heads must divide evenly");
  const vocab = tinyVocabulary();
  const shapes = llamaTensorShapes(hp, vocab.tokens.length);
  const tensors: GgufTensorInput[] = [];
  const add = (name: string, dims: number[], values: Float32Array) => {
    if (values.length !== elementCount(dims)) throw new Error(`${name}: ${values.length} values for [${dims}]`);
    const isVector = dims.length === 1;
    const type = isVector ? "f32" : input.weightType;
    tensors.push({
      name,
      dims,
      type: isVector ? GgmlType.F32 : GGML_TYPE_OF[type],
      data: encodeTensorData(values, type),
    });
  };
  add("token_embd.weight", shapes.tokenEmbedding, input.weights.tokenEmbedding);
  input.weights.layers.forEach((layer, i) => {
    for (const key of Object.keys(LAYER_TENSOR_NAMES) as (keyof LlamaLayerWeights)[]) {
      add(`blk.${i}.${LAYER_TENSOR_NAMES[key]}.weight`, shapes.layer[key], layer[key]);
    }
  });
  add("output_norm.weight", shapes.outputNorm, input.weights.outputNorm);
  add("output.weight", shapes.output, input.weights.output);
  if (input.weights.layers.length !== hp.layers) throw new Error("layer count does not match hyperparameters");

  const parameterCount = tensors.reduce((sum, t) => sum + elementCount(t.dims), 0);
  const headDim = hp.embedding / hp.heads;
  return writeGguf({
    metadata: [
      kv.str("general.architecture", "llama"),
      kv.str("general.name", input.name),
      kv.str("general.description", input.description),
      kv.u32("general.file_type", FILE_TYPE_OF[input.weightType]),
      kv.u32("general.quantization_version", 2),
      kv.u64("general.parameter_count", parameterCount),
      kv.u32("llama.vocab_size", vocab.tokens.length),
      kv.u32("llama.context_length", hp.contextLength),
      kv.u32("llama.embedding_length", hp.embedding),
      kv.u32("llama.block_count", hp.layers),
      kv.u32("llama.feed_forward_length", hp.feedForward),
      kv.u32("llama.attention.head_count", hp.heads),
      kv.u32("llama.attention.head_count_kv", hp.kvHeads),
      kv.u32("llama.rope.dimension_count", headDim),
      kv.f32("llama.rope.freq_base", hp.ropeFreqBase),
      kv.f32("llama.attention.layer_norm_rms_epsilon", hp.rmsNormEpsilon),
      ...tokenizerMetadata(vocab, input.addBos),
    ],
    tensors,
  });
}
