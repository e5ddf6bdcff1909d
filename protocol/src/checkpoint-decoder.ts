/**
 * What the llama-style decoders (llama, qwen2, qwen3, Gemma 2 and 3, Phi-3) have in common as llama.cpp's GGUF sees
 * them: the embedding, output norm and head tensors, llama's per-layer tensors (each architecture adds its own as
 * data), and the leading `<arch>.*` keys. One table, so a change to llama's layout reaches every architecture.
 */
import type { CheckpointConfig } from "./checkpoint";
import { type GgufMetadataEntry, kv } from "./gguf/writer";

/** Tensors by GGUF name (within a layer: without the `blk.N.` prefix), with shapes as stored ([out, in]). */
export type TensorShapes = [name: string, shape: number[]][];

type Shape = Pick<CheckpointConfig, "hidden" | "heads" | "kvHeads" | "headDim" | "feedForward" | "layers">;

/** token_embd, output_norm and, where the GGUF keeps its own head, output. */
export function decoderGlobalTensors(c: Pick<CheckpointConfig, "hidden">, vocabRows: number, withOutput: boolean) {
  const expected = new Map<string, number[]>([
    ["token_embd.weight", [vocabRows, c.hidden]],
    ["output_norm.weight", [c.hidden]],
  ]);
  if (withOutput) expected.set("output.weight", [vocabRows, c.hidden]);
  return expected;
}

/** Per-head norms of Q and K after projection (qwen3, Gemma 3). */
export function qkNormTensors(c: Pick<CheckpointConfig, "headDim">): TensorShapes {
  return [
    ["attn_q_norm.weight", [c.headDim]],
    ["attn_k_norm.weight", [c.headDim]],
  ];
}

/** What an architecture adds to llama's layer: right after the attention output, and at the layer's end. */
export interface LayerExtras {
  afterAttention?: TensorShapes;
  atEnd?: TensorShapes;
}

/**
 * Every tensor of a decoder with llama's layers (split Q/K/V, attention output, a norm before the gated feed-forward)
 * plus each architecture's extras, in the order the check names a missing one.
 */
export function decoderExpectedTensors(
  c: Shape,
  vocabRows: number,
  withOutput: boolean,
  extras: LayerExtras = {},
): Map<string, number[]> {
  const q = c.heads * c.headDim;
  const kvWidth = c.kvHeads * c.headDim;
  const layer: TensorShapes = [
    ["attn_norm.weight", [c.hidden]],
    ["attn_q.weight", [q, c.hidden]],
    ["attn_k.weight", [kvWidth, c.hidden]],
    ["attn_v.weight", [kvWidth, c.hidden]],
    ["attn_output.weight", [c.hidden, q]],
    ...(extras.afterAttention ?? []),
    ["ffn_norm.weight", [c.hidden]],
    ["ffn_gate.weight", [c.feedForward, c.hidden]],
    ["ffn_up.weight", [c.feedForward, c.hidden]],
    ["ffn_down.weight", [c.hidden, c.feedForward]],
    ...(extras.atEnd ?? []),
  ];
  const expected = decoderGlobalTensors(c, vocabRows, withOutput);
  for (let i = 0; i < c.layers; i++) for (const [name, shape] of layer) expected.set(`blk.${i}.${name}`, [...shape]);
  return expected;
}

/** The keys llama, qwen and Gemma write first, in this order (Phi-3's converter orders its own). */
export function decoderMetadata(c: CheckpointConfig, vocabRows: number): GgufMetadataEntry[] {
  const a = c.arch;
  return [
    kv.str("general.architecture", a),
    kv.u32(`${a}.vocab_size`, vocabRows),
    kv.u32(`${a}.block_count`, c.layers),
    kv.u32(`${a}.context_length`, c.contextLength),
    kv.u32(`${a}.embedding_length`, c.hidden),
    kv.u32(`${a}.feed_forward_length`, c.feedForward),
    kv.u32(`${a}.attention.head_count`, c.heads),
    kv.u32(`${a}.attention.head_count_kv`, c.kvHeads),
  ];
}
