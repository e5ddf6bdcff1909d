import {
  elementCount,
  type LlamaLayerWeights,
  llamaTensorShapes,
  TINY_MODEL_HYPERPARAMETERS,
  writeLlamaGguf,
} from "./llama-gguf";
import { mulberry32, uniformValues, type WeightType } from "./tensor-data";
import { tinyVocabulary } from "./tokenizer";

export const TINY_MODEL_DEFAULT_SEED = 42;
export const TINY_MODEL_NAME = "corral-tiny";

export interface TinyModelOptions {
  /** Unsigned 32-bit integer; the same seed gives a byte-identical file. */
  seed?: number;
  /** Type of the 2-D weight matrices (norms are F32 regardless). Default "f16". */
  weightType?: WeightType;
  /** The tokenizer prepends BOS, as llama-family models do. Default false (ChatML). */
  addBos?: boolean;
}

/**
 * The built-in tiny model: a `llama` GGUF with random weights from a seeded PRNG. Its text is gibberish; what
 * matters is that it loads and runs in real llama.cpp and that everything about it is reproducible.
 */
export function writeTinyModel(options: TinyModelOptions = {}): Uint8Array {
  const seed = options.seed ?? TINY_MODEL_DEFAULT_SEED;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`seed must be an unsigned 32-bit integer, got ${seed}`);
  }
  const hp = TINY_MODEL_HYPERPARAMETERS;
  const shapes = llamaTensorShapes(hp, tinyVocabulary().tokens.length);
  const next = mulberry32(seed);
  // Uniform with variance 1/fan_in keeps activations at unit scale through the layers.
  const matrix = (dims: number[]) => uniformValues(next, elementCount(dims), Math.sqrt(3 / dims[0]!));
  const ones = (dims: number[]) => new Float32Array(elementCount(dims)).fill(1);

  const layers: LlamaLayerWeights[] = [];
  const tokenEmbedding = uniformValues(next, elementCount(shapes.tokenEmbedding), 1);
  for (let i = 0; i < hp.layers; i++) {
    const s = shapes.layer;
    layers.push({
      attnNorm: ones(s.attnNorm),
      q: matrix(s.q),
      k: matrix(s.k),
      v: matrix(s.v),
      o: matrix(s.o),
      ffnNorm: ones(s.ffnNorm),
      gate: matrix(s.gate),
      up: matrix(s.up),
      down: matrix(s.down),
    });
  }
  // Twice the unit scale: logits with a standard deviation of about 2, so sampling has real choices to make.
  const output = uniformValues(next, elementCount(shapes.output), 2 * Math.sqrt(3 / hp.embedding));

  return writeLlamaGguf({
    name: TINY_MODEL_NAME,
    description: `corral built-in tiny model, random weights from seed ${seed}`,
    hyperparameters: hp,
    weights: { tokenEmbedding, outputNorm: ones(shapes.outputNorm), output, layers },
    weightType: options.weightType ?? "f16",
    addBos: options.addBos,
  });
}
