import { env } from "cloudflare:test";
import { writeSafetensors } from "@corral/protocol/safetensors-testkit";
import { MAX_TOKENIZER_MODEL_BYTES } from "@corral/protocol/sentencepiece";
import { tinySentencePieces, writeSentencePieceModel } from "@corral/protocol/sentencepiece-testkit";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { blobKey } from "../src/store/store";
import { ADMIN, call, newTenant } from "./helpers";
import { digest, ggufModel, json, ndjsonLines, snapshot, upload } from "./registry-fixtures";
import { fakeRunners, heartbeat, ndjsonLine, type RunnerHandler, resetFleet, runnerStatus } from "./relay-fixtures";

// Create from a safetensors checkpoint at the edge: what is refused before any runner work (each a 400 that changes
// nothing), and the convert job (a fake runner standing in; the converter itself is tested in gpu-runner).

const enc = new TextEncoder();
let restore: (() => void) | undefined;
let tenant: { id: string; key: string };

const CONFIG = {
  architectures: ["LlamaForCausalLM"],
  hidden_size: 8,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  intermediate_size: 16,
  vocab_size: 4,
  max_position_embeddings: 128,
  tie_word_embeddings: true,
};

type Tensor = { name: string; dtype: string; shape: number[]; data: Uint8Array };
const t = (name: string, shape: number[], dtype = "F16"): Tensor => ({
  name,
  dtype,
  shape,
  data: new Uint8Array(shape.reduce((a, b) => a * b, 1) * (dtype === "F32" ? 4 : 2)),
});
function tensors(): Tensor[] {
  const p = "model.layers.0";
  return [
    t("model.embed_tokens.weight", [4, 8]),
    t(`${p}.input_layernorm.weight`, [8], "F32"),
    t(`${p}.self_attn.q_proj.weight`, [8, 8]),
    t(`${p}.self_attn.k_proj.weight`, [4, 8]),
    t(`${p}.self_attn.v_proj.weight`, [4, 8]),
    t(`${p}.self_attn.o_proj.weight`, [8, 8]),
    t(`${p}.post_attention_layernorm.weight`, [8], "F32"),
    t(`${p}.mlp.gate_proj.weight`, [16, 8], "BF16"),
    t(`${p}.mlp.up_proj.weight`, [16, 8]),
    t(`${p}.mlp.down_proj.weight`, [8, 16]),
    t("model.norm.weight", [8], "F32"),
  ];
}

/** A valid tiny llama checkpoint's files; `change` edits them before they are uploaded. */
function checkpoint(change: (files: Map<string, Uint8Array>) => void = () => {}): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>([
    ["config.json", enc.encode(JSON.stringify(CONFIG))],
    ["tokenizer.json", enc.encode('{"model":{"type":"BPE","vocab":{"a":0,"b":1,"c":2,"d":3},"merges":[]}}')],
    ["tokenizer_config.json", enc.encode('{"chat_template":"{{ messages }}"}')],
    ["model.safetensors", writeSafetensors(tensors())],
  ]);
  change(files);
  return files;
}
/** A SentencePiece tokenizer.model instead of tokenizer.json (llama then reads it). */
const withTokenizerModel = (bytes: Uint8Array) => (f: Map<string, Uint8Array>) => {
  f.delete("tokenizer.json");
  f.set("tokenizer.model", bytes);
};
/** The checkpoint as a Gemma 2 (head_dim 4, pre/post norms), with or without its tokenizer.model. */
const asGemma2 = (withModel: boolean) => (f: Map<string, Uint8Array>) => {
  f.set("config.json", enc.encode(JSON.stringify({ ...CONFIG, architectures: ["Gemma2ForCausalLM"], head_dim: 4 })));
  const p = "model.layers.0";
  const norms = ["pre_feedforward_layernorm", "post_feedforward_layernorm"].map((n) => t(`${p}.${n}.weight`, [8]));
  f.set("model.safetensors", writeSafetensors([...tensors(), ...norms]));
  f.delete("tokenizer.json");
  if (withModel) f.set("tokenizer.model", writeSentencePieceModel(tinySentencePieces()));
};
const withConfig = (over: Record<string, unknown>) => (f: Map<string, Uint8Array>) =>
  f.set("config.json", enc.encode(JSON.stringify({ ...CONFIG, ...over })));
/** Rewrites the shard's header JSON (the data stays as it was). */
const withHeader =
  (edit: (h: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>) => void) =>
  (f: Map<string, Uint8Array>) => {
    const bytes = f.get("model.safetensors")!;
    const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
    edit(header);
    const data = bytes.subarray(8 + length);
    const written = writeSafetensors([], { header: JSON.stringify(header) });
    const out = new Uint8Array(written.length + data.length);
    out.set(written);
    out.set(data, written.length);
    f.set("model.safetensors", out);
  };

async function uploadAll(files: Map<string, Uint8Array>): Promise<Record<string, string>> {
  const map: Record<string, string> = {};
  for (const [name, bytes] of files) {
    const res = await upload(tenant.key, bytes);
    expect([200, 201]).toContain(res.status);
    map[name] = digest(bytes);
  }
  return map;
}
const create = (files: Record<string, string>, extra: Record<string, unknown> = {}) =>
  call("POST", "/api/create", { key: tenant.key, body: { model: "conv", files, ...extra } });

beforeEach(async () => {
  await resetFleet();
  tenant = await newTenant(`convert-${crypto.randomUUID().slice(0, 8)}`);
});
afterEach(() => {
  restore?.();
  restore = undefined;
});

describe("create from safetensors: bad input is a 400 that changes nothing", () => {
  it.each<[string, (f: Map<string, Uint8Array>) => void, string]>([
    [
      "header length past the end of the file",
      (f) => f.set("model.safetensors", writeSafetensors(tensors(), { headerLength: 1n << 40n })),
      "invalid safetensors file model.safetensors: header length 1099511627776 is past the end of the file",
    ],
    [
      "header JSON that is not an object",
      (f) => f.set("model.safetensors", writeSafetensors([], { header: "[1,2,3]" })),
      "invalid safetensors file model.safetensors: header is not a JSON object",
    ],
    [
      "data_offsets out of bounds",
      withHeader((h) => {
        h["model.norm.weight"]!.data_offsets = [1_000_000, 1_000_032];
      }),
      "tensor model.norm.weight data_offsets are out of bounds",
    ],
    [
      "overlapping data_offsets",
      withHeader((h) => {
        h["model.norm.weight"]!.data_offsets = [0, 32];
      }),
      "overlap",
    ],
    [
      "data_offsets not matching shape × dtype",
      withHeader((h) => {
        h["model.norm.weight"]!.shape = [9];
      }),
      "tensor model.norm.weight data_offsets do not match its shape and dtype",
    ],
    [
      "an unknown dtype",
      withHeader((h) => {
        h["model.norm.weight"]!.dtype = "F12";
      }),
      'tensor model.norm.weight has unknown dtype "F12"',
    ],
    [
      "a tensor missing for a declared layer",
      withConfig({ num_hidden_layers: 2 }),
      "tensor blk.1.attn_norm.weight is missing from the checkpoint",
    ],
    ["0 heads", withConfig({ num_attention_heads: 0 }), "config.json num_attention_heads must be an integer from 1"],
    [
      "hidden size not divisible by heads",
      withConfig({ num_attention_heads: 3, num_key_value_heads: 1 }),
      "config.json hidden_size 8 is not divisible by num_attention_heads 3",
    ],
    ["an absurd layer count", withConfig({ num_hidden_layers: 1e9 }), "config.json num_hidden_layers must be"],
    [
      "vocab size not matching the embedding rows",
      withConfig({ vocab_size: 5 }),
      "model.embed_tokens.weight has 4 rows but config.json vocab_size is 5",
    ],
    [
      "an index naming a shard that was not uploaded",
      (f) =>
        f.set(
          "model.safetensors.index.json",
          enc.encode(JSON.stringify({ weight_map: { "model.norm.weight": "model-00002-of-00002.safetensors" } })),
        ),
      "model.safetensors.index.json names shard model-00002-of-00002.safetensors, which was not uploaded",
    ],
    [
      "an unsupported architecture",
      withConfig({ architectures: ["GPT2LMHeadModel"] }),
      'unsupported architecture "GPT2LMHeadModel"',
    ],
    [
      "no tokenizer.json",
      (f) => f.delete("tokenizer.json"),
      "tokenizer.json is required to convert a safetensors model",
    ],
    ["no config.json", (f) => f.delete("config.json"), "config.json is required to convert a safetensors model"],
    [
      "GGUF and safetensors mixed",
      (f) => f.set("extra.gguf", ggufModel()),
      "mixed model file types: found both gguf and safetensors inputs",
    ],
    [
      "a file path that is not relative",
      (f) => f.set("../config.json", enc.encode("{}")),
      "file path must be relative",
    ],
    [
      "a truncated SentencePiece tokenizer.model",
      withTokenizerModel(writeSentencePieceModel(tinySentencePieces()).subarray(0, 20)),
      "invalid tokenizer.model: ModelProto has a length of 12 past its end",
    ],
    [
      "a tokenizer.model with a varint that never ends",
      withTokenizerModel(new Uint8Array(12).fill(0xff)),
      "invalid tokenizer.model: ModelProto has a varint longer than 10 bytes",
    ],
    [
      "an oversized tokenizer.model",
      withTokenizerModel(new Uint8Array(MAX_TOKENIZER_MODEL_BYTES + 1)),
      `tokenizer.model is ${MAX_TOKENIZER_MODEL_BYTES + 1} bytes, over the limit of ${MAX_TOKENIZER_MODEL_BYTES}`,
    ],
    [
      "Gemma 2 without a tokenizer.model",
      asGemma2(false),
      "tokenizer.model is required to convert a safetensors model",
    ],
    ["FROM a model as well", () => {}, "safetensors imports do not support FROM model overlays"],
  ])("%s", async (label, change, message) => {
    const files = await uploadAll(checkpoint(change));
    const before = await snapshot();
    const res = await create(files, label === "FROM a model as well" ? { from: "some-model" } : {});
    expect(res.status).toBe(400);
    expect((await json<{ error: string }>(res)).error).toContain(message);
    expect(await snapshot()).toBe(before);
  });
});

describe("create from safetensors: the convert job", () => {
  const converted = ggufModel({ salt: 71, fileType: 1 });
  const quantized = ggufModel({ salt: 72, fileType: 7 });

  /** A runner that stores `bytes` as the job's result the way a production runner does. */
  const producing =
    (bytes: Uint8Array, phase: "convert" | "quantize"): RunnerHandler =>
    async () => {
      await env.BLOBS.put(blobKey(digest(bytes)), bytes);
      const lines = [
        { event: "progress", phase: "fetch", completed: 1, total: 1 },
        { event: "progress", phase, completed: 1, total: 2 },
        { event: "progress", phase, completed: 2, total: 2 },
        { event: "progress", phase: "upload", completed: bytes.length, total: bytes.length },
        { event: "done", digest: digest(bytes), size: bytes.length },
      ];
      return new Response(new Blob(lines.map(ndjsonLine)).stream(), {
        headers: { "content-type": "application/x-ndjson" },
      });
    };

  it("sends the checkpoint's files to a runner and makes its GGUF the weights, with Ollama's progress", async () => {
    await heartbeat(runnerStatus("r1"));
    const fake = fakeRunners({ r1: producing(converted, "convert") });
    restore = fake.restore;
    const files = await uploadAll(checkpoint((f) => f.set("README.md", enc.encode("# model"))));
    const res = await create(files);
    expect(res.status).toBe(200);
    const statuses = (await ndjsonLines(res)).map((l) => l.status);
    expect(statuses[0]).toBe("converting model");
    expect(statuses).toContain(`creating new layer ${digest(converted)}`);
    expect(statuses.slice(-2)).toEqual(["writing manifest", "success"]);
    expect(fake.received).toHaveLength(1);
    const sent = fake.received[0]!.body as { files: { name: string }[] };
    expect(fake.received[0]!.path).toBe("/v1/convert");
    // Only the files a conversion reads go to the runner.
    expect(sent.files.map((f) => f.name).sort()).toEqual([
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
    const tags = await json<{ models: { name: string; details: Record<string, unknown> }[] }>(
      await call("GET", "/api/tags", { key: tenant.key }),
    );
    expect(tags.models[0]).toMatchObject({
      name: "conv:latest",
      details: { family: "llama", quantization_level: "F16" },
    });
  });

  it("a Gemma 2 checkpoint sends its SentencePiece tokenizer.model to the runner", async () => {
    await heartbeat(runnerStatus("r1"));
    const fake = fakeRunners({ r1: producing(ggufModel({ arch: "gemma2", salt: 73, fileType: 1 }), "convert") });
    restore = fake.restore;
    const res = await create(await uploadAll(checkpoint(asGemma2(true))));
    expect((await ndjsonLines(res)).at(-1)).toEqual({ status: "success" });
    const sent = fake.received[0]!.body as { files: { name: string }[] };
    expect(sent.files.map((f) => f.name).sort()).toEqual([
      "config.json",
      "model.safetensors",
      "tokenizer.model",
      "tokenizer_config.json",
    ]);
  });

  it("with quantize: converts, then quantizes the converted weights", async () => {
    await heartbeat(runnerStatus("r1"));
    const convert = producing(converted, "convert");
    const quantize = producing(quantized, "quantize");
    const fake = fakeRunners({
      r1: (req) => (new URL(req.url).pathname === "/v1/convert" ? convert(req) : quantize(req)),
    });
    restore = fake.restore;
    const res = await create(await uploadAll(checkpoint()), { quantize: "q8_0" });
    const statuses = (await ndjsonLines(res)).map((l) => l.status);
    expect(statuses).toContain("converting model");
    expect(statuses).toContain("quantizing F16 model to Q8_0");
    expect(statuses.at(-1)).toBe("success");
    expect(fake.received.map((r) => r.path)).toEqual(["/v1/convert", "/v1/quantize"]);
    expect(fake.received[1]!.body).toMatchObject({ source: { digest: digest(converted) }, file_type: "Q8_0" });
    const tags = await json<{ models: { details: Record<string, unknown> }[] }>(
      await call("GET", "/api/tags", { key: tenant.key }),
    );
    expect(tags.models[0]!.details.quantization_level).toBe("Q8_0");
    // The intermediate converted file is not the tenant's: it has no owner, and the sweep collects it.
    expect((await call("HEAD", `/api/blobs/${digest(converted)}`, { key: tenant.key })).status).toBe(404);
    expect((await call("HEAD", `/api/blobs/${digest(quantized)}`, { key: tenant.key })).status).toBe(200);
  });

  it("a runner's refusal of the checkpoint ends the stream with its error and creates nothing", async () => {
    await heartbeat(runnerStatus("r1"));
    const fake = fakeRunners({
      r1: () =>
        new Response(
          ndjsonLine({
            event: "error",
            error: "the tokenizer has 9 tokens but the embedding only 4 rows",
            status: 400,
          }),
          {
            headers: { "content-type": "application/x-ndjson" },
          },
        ),
    });
    restore = fake.restore;
    const res = await create(await uploadAll(checkpoint()));
    const lines = await ndjsonLines(res);
    expect(lines.at(-1)).toEqual({ error: "the tokenizer has 9 tokens but the embedding only 4 rows" });
    const tags = await json<{ models: unknown[] }>(await call("GET", "/api/tags", { key: tenant.key }));
    expect(tags.models).toEqual([]);
  });

  it("checks the storage quota with the converted size's estimate before any job", async () => {
    const files = await uploadAll(checkpoint());
    const used = [...checkpoint().values()].reduce((sum, b) => sum + b.length, 0);
    await call("PUT", `/admin/tenants/${tenant.id}/quotas`, { key: ADMIN, body: { storage_bytes: used + 10 } });
    await heartbeat(runnerStatus("r1"));
    const fake = fakeRunners({ r1: producing(converted, "convert") });
    restore = fake.restore;
    const res = await create(files);
    expect(res.status).toBe(413);
    expect((await json<{ error: string }>(res)).error).toMatch(/^storage quota exceeded/);
    expect(fake.received).toHaveLength(0);
  });
});
