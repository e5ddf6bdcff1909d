/**
 * Tiny Gemma 2, Gemma 3 and Phi-3 checkpoints with a SentencePiece tokenizer.model, each with the GGUF llama.cpp's
 * converter rules give for it, built independently: weights are drawn as the GGUF holds them; the checkpoint gets
 * Gemma's norms with the 1 taken back out (HF stores `w` for `1 + w`), Phi-3's Q/K/V and gate/up each fused, F32 or
 * BF16. The tokenizer keys are written by hand (sentencepiece-testkit.ts). Same options → same bytes.
 */
import { type GgufMetadataEntry, kv } from "@corral/protocol/gguf/writer";
import { bf16Bytes, f32Bytes, writeSafetensors } from "@corral/protocol/safetensors-testkit";
import {
  tinySentencePieceConfig,
  tinySentencePieceKeys,
  tinySentencePieces,
  writeSentencePieceModel,
} from "@corral/protocol/sentencepiece-testkit";
import {
  type Checkpoint,
  type CheckpointDtype,
  checkpointValues,
  referenceGguf,
  referenceShapeKeys,
} from "./checkpoint-fixture";

export interface SentencePieceCheckpointOptions {
  architecture: "Gemma2ForCausalLM" | "Gemma3ForCausalLM" | "Phi3ForCausalLM";
  dtype?: CheckpointDtype;
  seed?: number;
  /** Phi-3 only: longrope scaling with long/short factors (context 4× the original). */
  longrope?: boolean;
  /** Gemma 2 only: an lm_head in the checkpoint (autoawq writes one), which the GGUF does not get. */
  lmHead?: boolean;
}

const HIDDEN = 64;
const HEADS = 4;
const KV_HEADS = 2;
const HEAD_DIM = 16;
const LAYERS = 2;
const FF = 128;
/** Embedding rows: the pieces plus 3 rows the tokenizer pads as `[PADi]`. */
const ROWS = tinySentencePieces().length + 3;
const encoder = new TextEncoder();
const json = (value: unknown) => encoder.encode(JSON.stringify(value));

export function tinySentencePieceCheckpoint(o: SentencePieceCheckpointOptions): Checkpoint {
  const gemma = o.architecture !== "Phi3ForCausalLM";
  const arch = o.architecture === "Gemma2ForCausalLM" ? "gemma2" : gemma ? "gemma3" : "phi3";
  const dtype = o.dtype ?? "F32";
  const draw = checkpointValues(o.seed ?? 21, dtype);
  // [GGUF name, HF name, shape [out, in] or [n], values as the GGUF holds them, values as the checkpoint holds them]
  const tensors: [string, string, number[], Float32Array, Float32Array][] = [];
  const matrix = (gguf: string, hf: string, out: number, inp: number) => {
    const v = draw(out * inp, Math.sqrt(3 / inp));
    tensors.push([gguf, hf, [out, inp], v, v]);
  };
  /** A norm: Gemma's checkpoint stores `w`, the GGUF `1 + w` (Float32Array's map rounds `x + 1` to F32, as the converter's add does). */
  const norm = (gguf: string, hf: string, n: number) => {
    const stored = draw(n, 0.2);
    const withOne = stored.map((x) => x + 1);
    tensors.push([gguf, hf, [n], withOne, gemma ? stored : withOne]);
  };
  matrix("token_embd.weight", "model.embed_tokens.weight", ROWS, HIDDEN);
  const q = HEADS * HEAD_DIM;
  const kvWidth = KV_HEADS * HEAD_DIM;
  for (let i = 0; i < LAYERS; i++) {
    const b = `blk.${i}.`;
    const h = `model.layers.${i}.`;
    norm(`${b}attn_norm.weight`, `${h}input_layernorm.weight`, HIDDEN);
    if (gemma) {
      matrix(`${b}attn_q.weight`, `${h}self_attn.q_proj.weight`, q, HIDDEN);
      matrix(`${b}attn_k.weight`, `${h}self_attn.k_proj.weight`, kvWidth, HIDDEN);
      matrix(`${b}attn_v.weight`, `${h}self_attn.v_proj.weight`, kvWidth, HIDDEN);
      if (arch === "gemma3") {
        norm(`${b}attn_q_norm.weight`, `${h}self_attn.q_norm.weight`, HEAD_DIM);
        norm(`${b}attn_k_norm.weight`, `${h}self_attn.k_norm.weight`, HEAD_DIM);
      }
      matrix(`${b}attn_output.weight`, `${h}self_attn.o_proj.weight`, HIDDEN, q);
      norm(`${b}post_attention_norm.weight`, `${h}post_attention_layernorm.weight`, HIDDEN);
      norm(`${b}ffn_norm.weight`, `${h}pre_feedforward_layernorm.weight`, HIDDEN);
      matrix(`${b}ffn_gate.weight`, `${h}mlp.gate_proj.weight`, FF, HIDDEN);
      matrix(`${b}ffn_up.weight`, `${h}mlp.up_proj.weight`, FF, HIDDEN);
      matrix(`${b}ffn_down.weight`, `${h}mlp.down_proj.weight`, HIDDEN, FF);
      norm(`${b}post_ffw_norm.weight`, `${h}post_feedforward_layernorm.weight`, HIDDEN);
    } else {
      matrix(`${b}attn_qkv.weight`, `${h}self_attn.qkv_proj.weight`, q + 2 * kvWidth, HIDDEN);
      matrix(`${b}attn_output.weight`, `${h}self_attn.o_proj.weight`, HIDDEN, q);
      norm(`${b}ffn_norm.weight`, `${h}post_attention_layernorm.weight`, HIDDEN);
      matrix(`${b}ffn_up.weight`, `${h}mlp.gate_up_proj.weight`, 2 * FF, HIDDEN);
      matrix(`${b}ffn_down.weight`, `${h}mlp.down_proj.weight`, HIDDEN, FF);
    }
  }
  norm("output_norm.weight", "model.norm.weight", HIDDEN);
  if (!gemma) matrix("output.weight", "lm_head.weight", ROWS, HIDDEN);

  const bytesOf = (v: Float32Array) => (dtype === "BF16" ? bf16Bytes(v) : f32Bytes(v));
  const files = new Map<string, Uint8Array>();
  const hf = tensors.map(([, name, shape, , stored]) => ({ name, shape, dtype, data: bytesOf(stored) }));
  if (o.lmHead)
    hf.push({ name: "lm_head.weight", shape: [ROWS, HIDDEN], dtype, data: bytesOf(draw(ROWS * HIDDEN, 1)) });
  files.set("model.safetensors", writeSafetensors(hf));
  const { config, keys, extra } = architectureParts(arch, o.longrope === true);
  files.set("config.json", json(config));
  files.set("tokenizer.model", writeSentencePieceModel(tinySentencePieces()));
  files.set("tokenizer_config.json", json(tinySentencePieceConfig()));

  const reference = referenceGguf(
    arch,
    dtype,
    [...extra, ...tensors],
    [...keys, ...tinySentencePieceKeys(ROWS, gemma)],
  );
  return { files, reference };
}

type ExtraTensor = [string, string, number[], Float32Array, Float32Array];

/** config.json, the `<arch>.*` keys llama.cpp's converter writes for it, and the tensors it computes. */
function architectureParts(arch: "gemma2" | "gemma3" | "phi3", longrope: boolean) {
  const config: Record<string, unknown> = {
    architectures: [{ gemma2: "Gemma2ForCausalLM", gemma3: "Gemma3ForCausalLM", phi3: "Phi3ForCausalLM" }[arch]],
    hidden_size: HIDDEN,
    num_hidden_layers: LAYERS,
    num_attention_heads: HEADS,
    num_key_value_heads: KV_HEADS,
    intermediate_size: FF,
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-6,
    vocab_size: ROWS,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 0,
  };
  const a = arch;
  const keys: GgufMetadataEntry[] = [
    ...referenceShapeKeys(a, { hidden: HIDDEN, layers: LAYERS, ff: FF, heads: HEADS, kvHeads: KV_HEADS }),
    kv.f32(`${a}.attention.layer_norm_rms_epsilon`, 1e-6),
  ];
  const extra: ExtraTensor[] = [];
  if (arch !== "phi3") {
    Object.assign(config, { head_dim: HEAD_DIM, sliding_window: 512, final_logit_softcapping: 30 });
    keys.push(kv.u32(`${a}.attention.key_length`, HEAD_DIM), kv.u32(`${a}.attention.value_length`, HEAD_DIM));
    keys.push(kv.f32(`${a}.final_logit_softcapping`, 30), kv.u32(`${a}.attention.sliding_window`, 512));
  }
  if (arch === "gemma2") {
    config.attn_logit_softcapping = 50;
    keys.push(kv.f32("gemma2.attn_logit_softcapping", 50));
  }
  if (arch === "gemma3") {
    Object.assign(config, { rope_theta: 1_000_000, rope_local_base_freq: 10_000 });
    keys.push(kv.f32("gemma3.rope.freq_base", 1_000_000), kv.f32("gemma3.rope.freq_base_swa", 10_000));
  }
  if (arch === "phi3") {
    Object.assign(config, { rope_theta: 10_000, original_max_position_embeddings: 1024, tie_word_embeddings: false });
    keys.push(
      kv.f32("phi3.rope.freq_base", 10_000),
      kv.u32("phi3.rope.dimension_count", HEAD_DIM),
      kv.u32("phi3.attention.sliding_window", 0),
      kv.u32("phi3.rope.scaling.original_context_length", 1024),
    );
    if (longrope) {
      // Four times the original context: the long factors apply past it, scaled attention by √(1 + ln 4 / ln 1024).
      const long = Array.from({ length: HEAD_DIM / 2 }, (_, i) => 1 + i / 4);
      const short = Array.from({ length: HEAD_DIM / 2 }, (_, i) => 1 + i / 64);
      config.rope_scaling = { type: "longrope", long_factor: long, short_factor: short };
      keys.push(kv.f32("phi3.rope.scaling.attn_factor", Math.sqrt(1 + Math.log(4) / Math.log(1024))));
      for (const [name, values] of [
        ["rope_factors_long.weight", long],
        ["rope_factors_short.weight", short],
      ] as const) {
        const f = Float32Array.from(values);
        extra.push([name, "", [f.length], f, f]);
      }
    }
  }
  return { config, keys, extra };
}
