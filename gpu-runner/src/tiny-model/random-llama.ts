/**
 * Bigger `llama` GGUFs with seeded random F16 weights and the built-in tokenizer, for benchmarks and tests that need
 * a model where the weights, not per-token overhead, dominate (the runner and quantize benchmarks, quantize's abort
 * test). Same options → same bytes.
 */
import {
  elementCount,
  type LlamaHyperparameters,
  type LlamaLayerWeights,
  llamaTensorShapes,
  writeLlamaGguf,
} from "./llama-gguf";
import { mulberry32, uniformValues } from "./tensor-data";
import { tinyVocabulary } from "./tokenizer";

export interface RandomLlamaOptions {
  name: string;
  description: string;
  /** Width, depth and heads; the rest defaults to a small llama (RMS norm 1e-5, rope base 10000, 4096 context). */
  hyperparameters: Pick<LlamaHyperparameters, "embedding" | "layers" | "heads" | "kvHeads" | "feedForward"> &
    Partial<LlamaHyperparameters>;
  seed?: number;
  /**
   * Zero the output rows of the special tokens (im_start, im_end, endoftext): their logit is then 0 while top-k
   * picks from far above it, so top-k sampling never ends a generation early. A throughput benchmark then compares
   * engines over the same tokens per stream, instead of over which streams their random number generators ended
   * early (with per-sequence KV streams, a stream that ends splits every later batch).
   */
  neverEnds?: boolean;
}

export function writeRandomLlamaModel(o: RandomLlamaOptions): Uint8Array {
  const hp: LlamaHyperparameters = {
    contextLength: 4096,
    rmsNormEpsilon: 1e-5,
    ropeFreqBase: 10000,
    ...o.hyperparameters,
  };
  const shapes = llamaTensorShapes(hp, tinyVocabulary().tokens.length);
  const next = mulberry32(o.seed ?? 7);
  // Uniform with the variance of a fan-in scaled init, so activations stay in range through the layers.
  const matrix = (dims: number[]) => uniformValues(next, elementCount(dims), Math.sqrt(3 / dims[0]!));
  const ones = (dims: number[]) => new Float32Array(elementCount(dims)).fill(1);
  const tokenEmbedding = uniformValues(next, elementCount(shapes.tokenEmbedding), 1);
  const layers: LlamaLayerWeights[] = Array.from({ length: hp.layers }, () => ({
    attnNorm: ones(shapes.layer.attnNorm),
    q: matrix(shapes.layer.q),
    k: matrix(shapes.layer.k),
    v: matrix(shapes.layer.v),
    o: matrix(shapes.layer.o),
    ffnNorm: ones(shapes.layer.ffnNorm),
    gate: matrix(shapes.layer.gate),
    up: matrix(shapes.layer.up),
    down: matrix(shapes.layer.down),
  }));
  const output = uniformValues(next, elementCount(shapes.output), 2 * Math.sqrt(3 / hp.embedding));
  if (o.neverEnds) {
    const vocab = tinyVocabulary();
    // ggml order [embedding, vocab]: token t's row is embedding values from t × embedding.
    for (const id of [vocab.imStartId, vocab.imEndId, vocab.endOfTextId]) {
      output.fill(0, id * hp.embedding, (id + 1) * hp.embedding);
    }
  }
  return writeLlamaGguf({
    name: o.name,
    description: o.description,
    hyperparameters: hp,
    weights: { tokenEmbedding, outputNorm: ones(shapes.outputNorm), output, layers },
    weightType: "f16",
  });
}
