/**
 * `npm run bench:convert`: the runner's safetensors → GGUF converter (the child process a convert job runs) on a
 * synthetic ~500 MB F32 llama checkpoint written here, streamed to disk tensor by tensor. Reports throughput (MB of
 * checkpoint read per second) and the child's peak RSS, beside the anchors it is judged by: the same child's peak
 * RSS converting a tiny checkpoint (the process's own baseline) and the largest tensor's size ("peak memory about
 * one tensor": the converter holds a tensor's input and output at once).
 * Env: BENCH_LAYERS (10; ~51 MB per layer).
 */
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tinyCheckpoint } from "../gpu-runner/src/convert/checkpoint-fixture";
import { convertInChild } from "../gpu-runner/src/convert/engine";
import { mulberry32, uniformValues } from "../gpu-runner/src/tiny-model/tensor-data";

const LAYERS = Number(process.env.BENCH_LAYERS ?? 10);
const HIDDEN = 1024;
const FF = 2816;
const MB = 1024 * 1024;

/** The tiny checkpoint's tokenizer files, with a big model's config and weights beside them. */
function writeCheckpoint(dir: string): { files: Map<string, string>; bytes: number; largest: number } {
  const tiny = tinyCheckpoint();
  const files = new Map<string, string>();
  for (const name of ["tokenizer.json", "tokenizer_config.json"]) {
    files.set(name, join(dir, name));
    writeFileSync(join(dir, name), tiny.files.get(name)!);
  }
  const vocab = JSON.parse(new TextDecoder().decode(tiny.files.get("config.json"))).vocab_size as number;
  const config = {
    architectures: ["LlamaForCausalLM"],
    hidden_size: HIDDEN,
    num_hidden_layers: LAYERS,
    num_attention_heads: 16,
    num_key_value_heads: 16,
    intermediate_size: FF,
    vocab_size: vocab,
    max_position_embeddings: 4096,
  };
  files.set("config.json", join(dir, "config.json"));
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  const shapes: [string, number[]][] = [["model.embed_tokens.weight", [vocab, HIDDEN]]];
  for (let i = 0; i < LAYERS; i++) {
    const p = `model.layers.${i}`;
    shapes.push(
      [`${p}.input_layernorm.weight`, [HIDDEN]],
      [`${p}.self_attn.q_proj.weight`, [HIDDEN, HIDDEN]],
      [`${p}.self_attn.k_proj.weight`, [HIDDEN, HIDDEN]],
      [`${p}.self_attn.v_proj.weight`, [HIDDEN, HIDDEN]],
      [`${p}.self_attn.o_proj.weight`, [HIDDEN, HIDDEN]],
      [`${p}.post_attention_layernorm.weight`, [HIDDEN]],
      [`${p}.mlp.gate_proj.weight`, [FF, HIDDEN]],
      [`${p}.mlp.up_proj.weight`, [FF, HIDDEN]],
      [`${p}.mlp.down_proj.weight`, [HIDDEN, FF]],
    );
  }
  shapes.push(["model.norm.weight", [HIDDEN]], ["lm_head.weight", [vocab, HIDDEN]]);
  const header: Record<string, unknown> = {};
  let offset = 0;
  let largest = 0;
  for (const [name, shape] of shapes) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
    largest = Math.max(largest, bytes);
  }
  let json = JSON.stringify(header);
  while (json.length % 8 !== 0) json += " ";
  const path = join(dir, "model.safetensors");
  const fd = openSync(path, "w");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  writeSync(fd, length);
  writeSync(fd, json);
  const next = mulberry32(1);
  for (const [, shape] of shapes) {
    const values = uniformValues(
      next,
      shape.reduce((a, b) => a * b, 1),
      0.05,
    );
    writeSync(fd, new Uint8Array(values.buffer));
  }
  closeSync(fd);
  files.set("model.safetensors", path);
  return { files, bytes: statSync(path).size, largest };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "corral-bench-convert-"));
  try {
    const tinyDir = mkdtempSync(join(dir, "tiny-"));
    const tinyFiles = new Map<string, string>();
    for (const [name, bytes] of tinyCheckpoint().files) {
      tinyFiles.set(name, join(tinyDir, name));
      writeFileSync(join(tinyDir, name), bytes);
    }
    const baseline = await convertInChild({ files: tinyFiles, output: join(tinyDir, "out.gguf") });
    const { files, bytes, largest } = writeCheckpoint(dir);
    const start = performance.now();
    const result = await convertInChild({ files, output: join(dir, "out.gguf") });
    const seconds = (performance.now() - start) / 1000;
    console.log(
      JSON.stringify(
        {
          checkpoint_mb: Math.round(bytes / MB),
          gguf_mb: Math.round(result.size / MB),
          seconds: Math.round(seconds * 100) / 100,
          throughput_mb_s: Math.round(bytes / MB / seconds),
          peak_rss_mb: Math.round(result.maxRssBytes / MB),
          anchor_baseline_rss_mb: Math.round(baseline.maxRssBytes / MB),
          anchor_largest_tensor_mb: Math.round(largest / MB),
        },
        null,
        2,
      ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
