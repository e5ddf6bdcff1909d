/**
 * A tiny BERT checkpoint (`BertModel`, WordPiece tokenizer) with seeded weights, and beside it the `bert` GGUF the
 * converter rules give, built independently (tokens spelt out with llama.cpp's phantom space by hand).
 */
import { GgmlType } from "@corral/protocol/gguf/types";
import { type GgufTensorInput, kv, writeGguf } from "@corral/protocol/gguf/writer";
import { f32Bytes, writeSafetensors } from "@corral/protocol/safetensors-testkit";
import { encodeTensorData, mulberry32, uniformValues } from "../tiny-model/tensor-data";
import type { Checkpoint } from "./checkpoint-fixture";

const HIDDEN = 32;
const LAYERS = 2;
const FF = 64;
const CONTEXT = 64;
const TYPES = 2;
const SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
const WORDS = "the quick brown fox jumps over lazy dog hello world a b c d e f g h i j k l m n o p q r s t u v w x y z";
const PIECES = ["##s", "##ing", "##ed"];
/** The same vocabulary as llama.cpp's bert tokenizer wants it. */
const PHANTOM = [...SPECIALS, ...WORDS.split(" ").map((w) => `\u2581${w}`), "s", "ing", "ed"];
const enc = new TextEncoder();

export function tinyBertCheckpoint(seed = 31): Checkpoint {
  const vocab = [...SPECIALS, ...WORDS.split(" "), ...PIECES];
  const next = mulberry32(seed);
  // [GGUF name, HF name, shape [out, in] or [n], values]
  const tensors: [string, string, number[], Float32Array][] = [];
  const add = (gguf: string, hf: string, shape: number[], scale: number, offset = 0) => {
    const values = uniformValues(
      next,
      shape.reduce((a, b) => a * b, 1),
      scale,
    ).map((v) => v + offset);
    tensors.push([gguf, hf, shape, values]);
  };
  add("token_embd.weight", "embeddings.word_embeddings.weight", [vocab.length, HIDDEN], 1);
  add("position_embd.weight", "embeddings.position_embeddings.weight", [CONTEXT, HIDDEN], 0.1);
  add("token_types.weight", "embeddings.token_type_embeddings.weight", [TYPES, HIDDEN], 0.1);
  add("token_embd_norm.weight", "embeddings.LayerNorm.weight", [HIDDEN], 0.1, 1);
  add("token_embd_norm.bias", "embeddings.LayerNorm.bias", [HIDDEN], 0.1);
  for (let i = 0; i < LAYERS; i++) {
    const layer = (gguf: string, hf: string, out: number, inp: number) => {
      add(`blk.${i}.${gguf}.weight`, `encoder.layer.${i}.${hf}.weight`, [out, inp], Math.sqrt(3 / inp));
      add(`blk.${i}.${gguf}.bias`, `encoder.layer.${i}.${hf}.bias`, [out], 0.05);
    };
    const norm = (gguf: string, hf: string) => {
      add(`blk.${i}.${gguf}.weight`, `encoder.layer.${i}.${hf}.weight`, [HIDDEN], 0.1, 1);
      add(`blk.${i}.${gguf}.bias`, `encoder.layer.${i}.${hf}.bias`, [HIDDEN], 0.05);
    };
    layer("attn_q", "attention.self.query", HIDDEN, HIDDEN);
    layer("attn_k", "attention.self.key", HIDDEN, HIDDEN);
    layer("attn_v", "attention.self.value", HIDDEN, HIDDEN);
    layer("attn_output", "attention.output.dense", HIDDEN, HIDDEN);
    norm("attn_output_norm", "attention.output.LayerNorm");
    layer("ffn_up", "intermediate.dense", FF, HIDDEN);
    layer("ffn_down", "output.dense", HIDDEN, FF);
    norm("layer_output_norm", "output.LayerNorm");
  }

  const positionIds = {
    name: "embeddings.position_ids",
    dtype: "I64",
    shape: [1, CONTEXT],
    data: new Uint8Array(CONTEXT * 8),
  };
  const files = new Map<string, Uint8Array>([
    [
      "model.safetensors",
      writeSafetensors([
        positionIds,
        ...tensors.map(([, name, shape, values]) => ({ name, shape, dtype: "F32", data: f32Bytes(values) })),
      ]),
    ],
    [
      "config.json",
      enc.encode(
        JSON.stringify({
          architectures: ["BertModel"],
          hidden_size: HIDDEN,
          num_hidden_layers: LAYERS,
          num_attention_heads: 2,
          intermediate_size: FF,
          max_position_embeddings: CONTEXT,
          type_vocab_size: TYPES,
          layer_norm_eps: 1e-12,
          vocab_size: vocab.length,
        }),
      ),
    ],
    [
      "tokenizer.json",
      enc.encode(
        JSON.stringify({
          added_tokens: SPECIALS.map((content, id) => ({ id, content, special: true })),
          model: { type: "WordPiece", unk_token: "[UNK]", vocab: Object.fromEntries(vocab.map((t, i) => [t, i])) },
        }),
      ),
    ],
  ]);

  const referenceTensors: GgufTensorInput[] = tensors.map(([name, , shape, values]) => {
    const f32 = shape.length === 1 || name === "token_types.weight";
    return {
      name,
      dims: [...shape].reverse(),
      type: f32 ? GgmlType.F32 : GgmlType.F16,
      data: f32 ? f32Bytes(values) : encodeTensorData(values, "f16"),
    };
  });
  const reference = writeGguf({
    metadata: [
      kv.str("general.architecture", "bert"),
      kv.u32("general.file_type", 1),
      kv.u32("bert.context_length", CONTEXT),
      kv.u32("bert.embedding_length", HIDDEN),
      kv.u32("bert.feed_forward_length", FF),
      kv.u32("bert.block_count", LAYERS),
      kv.u32("bert.attention.head_count", 2),
      kv.f32("bert.attention.layer_norm_epsilon", 1e-12),
      kv.bool("bert.attention.causal", false),
      kv.u32("bert.pooling_type", 1),
      kv.u32("tokenizer.ggml.token_type_count", TYPES),
      kv.str("tokenizer.ggml.model", "bert"),
      kv.strArr("tokenizer.ggml.tokens", PHANTOM),
      kv.i32Arr(
        "tokenizer.ggml.token_type",
        PHANTOM.map((_, i) => (i < SPECIALS.length ? 3 : 1)),
      ),
      kv.u32("tokenizer.ggml.bos_token_id", 2),
      kv.u32("tokenizer.ggml.eos_token_id", 3),
      kv.u32("tokenizer.ggml.cls_token_id", 2),
      kv.u32("tokenizer.ggml.seperator_token_id", 3),
      kv.u32("tokenizer.ggml.padding_token_id", 0),
      kv.u32("tokenizer.ggml.unknown_token_id", 1),
      kv.u32("tokenizer.ggml.mask_token_id", 4),
      kv.bool("tokenizer.ggml.add_bos_token", true),
      kv.bool("tokenizer.ggml.add_eos_token", true),
    ],
    tensors: referenceTensors,
  });
  return { files, reference };
}
