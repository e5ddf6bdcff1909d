/**
 * A tiny LLaVA-style vision projector: a `clip` GGUF with llama.cpp's `clip.*` keys, a 2-layer ViT over 8×8
 * patches of a 32×32 image (`v.*` tensors) and an `mlp` projector (`mm.0`, GELU, `mm.2`) into the text model's
 * embedding space. Random weights from a seeded PRNG: each image becomes 16 embeddings that depend on its pixels,
 * which is all the tests need to prove the pixels reach the model.
 */
import { GgmlType } from "../../../protocol/src/gguf/types";
import { type GgufTensorInput, kv, writeGguf } from "../../../protocol/src/gguf/writer";
import { elementCount, TINY_MODEL_HYPERPARAMETERS } from "./llama-gguf";
import { encodeTensorData, mulberry32, uniformValues } from "./tensor-data";

export const TINY_PROJECTOR_DEFAULT_SEED = 7;

/** A vision tower's shape: an image becomes (imageSize / patchSize)² positions. */
export interface VisionShape {
  embedding: number;
  heads: number;
  feedForward: number;
  layers: number;
  imageSize: number;
  patchSize: number;
}

/** The tests' tower: 16 positions per image. */
export const TINY_VISION: VisionShape = {
  embedding: 32,
  heads: 2,
  feedForward: 48,
  layers: 2,
  imageSize: 32,
  patchSize: 8,
};

/** Image positions a tower gives each picture. */
export const visionPositions = (v: VisionShape) => (v.imageSize / v.patchSize) ** 2;

export interface TinyProjectorOptions {
  seed?: number;
  /** Embedding size of the text model the projector feeds (the `mm.2` output); the tiny model's by default. */
  textEmbedding?: number;
  /** The tower's shape (a bigger one makes the encode cost measurable in benchmarks); TINY_VISION by default. */
  vision?: VisionShape;
}

export function writeTinyProjector(options: TinyProjectorOptions = {}): Uint8Array {
  const v = options.vision ?? TINY_VISION;
  const patches = visionPositions(v);
  const textEmbedding = options.textEmbedding ?? TINY_MODEL_HYPERPARAMETERS.embedding;
  const next = mulberry32(options.seed ?? TINY_PROJECTOR_DEFAULT_SEED);
  const tensors: GgufTensorInput[] = [];
  const add = (name: string, dims: number[], values: Float32Array, type: "f32" | "f16" = "f32") => {
    tensors.push({
      name,
      dims,
      type: type === "f16" ? GgmlType.F16 : GgmlType.F32,
      data: encodeTensorData(values, type),
    });
  };
  const matrix = (name: string, dims: number[]) =>
    add(name, dims, uniformValues(next, elementCount(dims), Math.sqrt(3 / dims[0]!)));
  const vector = (name: string, size: number, fill?: number) =>
    add(name, [size], fill === undefined ? uniformValues(next, size, 0.1) : new Float32Array(size).fill(fill));

  // The patch convolution kernel [KW, KH, IC, OC]; fan-in is one patch of 3 channels.
  const kernel = [v.patchSize, v.patchSize, 3, v.embedding];
  add(
    "v.patch_embd.weight",
    kernel,
    uniformValues(next, elementCount(kernel), Math.sqrt(3 / (v.patchSize ** 2 * 3))),
    "f16",
  );
  add("v.position_embd.weight", [v.embedding, patches], uniformValues(next, v.embedding * patches, 0.1));
  vector("v.pre_ln.weight", v.embedding, 1);
  vector("v.pre_ln.bias", v.embedding, 0);
  for (let i = 0; i < v.layers; i++) {
    const blk = `v.blk.${i}`;
    for (const part of ["attn_q", "attn_k", "attn_v", "attn_out"]) {
      matrix(`${blk}.${part}.weight`, [v.embedding, v.embedding]);
      vector(`${blk}.${part}.bias`, v.embedding);
    }
    vector(`${blk}.ln1.weight`, v.embedding, 1);
    vector(`${blk}.ln1.bias`, v.embedding, 0);
    vector(`${blk}.ln2.weight`, v.embedding, 1);
    vector(`${blk}.ln2.bias`, v.embedding, 0);
    matrix(`${blk}.ffn_up.weight`, [v.embedding, v.feedForward]);
    vector(`${blk}.ffn_up.bias`, v.feedForward);
    matrix(`${blk}.ffn_down.weight`, [v.feedForward, v.embedding]);
    vector(`${blk}.ffn_down.bias`, v.embedding);
  }
  matrix("mm.0.weight", [v.embedding, textEmbedding]);
  vector("mm.0.bias", textEmbedding);
  matrix("mm.2.weight", [textEmbedding, textEmbedding]);
  vector("mm.2.bias", textEmbedding);

  return writeGguf({
    metadata: [
      kv.str("general.architecture", "clip"),
      kv.str("general.name", "corral-tiny-vision"),
      kv.str("general.description", "corral built-in tiny LLaVA-style projector, random weights"),
      kv.u32("general.file_type", 1),
      kv.bool("clip.has_vision_encoder", true),
      kv.bool("clip.use_gelu", true),
      kv.str("clip.projector_type", "mlp"),
      kv.u32("clip.vision.image_size", v.imageSize),
      kv.u32("clip.vision.patch_size", v.patchSize),
      kv.u32("clip.vision.embedding_length", v.embedding),
      kv.u32("clip.vision.feed_forward_length", v.feedForward),
      kv.u32("clip.vision.projection_dim", textEmbedding),
      kv.u32("clip.vision.attention.head_count", v.heads),
      kv.f32("clip.vision.attention.layer_norm_epsilon", 1e-5),
      kv.u32("clip.vision.block_count", v.layers),
      kv.f32Arr("clip.vision.image_mean", [0.5, 0.5, 0.5]),
      kv.f32Arr("clip.vision.image_std", [0.5, 0.5, 0.5]),
    ],
    tensors,
  });
}
