import { env } from "cloudflare:test";
import { GgmlType } from "@corral/protocol/gguf/types";
import { kv, writeGguf } from "@corral/protocol/gguf/writer";
import { writeSafetensors } from "@corral/protocol/safetensors-testkit";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { blobKey } from "../src/store/store";
import { call, newTenant } from "./helpers";
import { digest, json, ndjsonLines, snapshot, upload } from "./registry-fixtures";
import { fakeRunners, heartbeat, ndjsonLine, type RunnerHandler, resetFleet, runnerStatus } from "./relay-fixtures";

// Create with a PEFT LoRA adapter at the edge: the checks against the base model before any runner work (each a 400
// that changes nothing), and the convert job with the base's shape (a fake runner standing in; the converter itself
// is tested in gpu-runner).

const enc = new TextEncoder();
let restore: (() => void) | undefined;
let tenant: { id: string; key: string };

/** A llama base GGUF: 8 wide, 2 heads (1 KV head) of 4, 1 layer. */
function baseGguf(arch = "llama", hidden = 8): Uint8Array {
  const matrix = (name: string, inp: number, out: number) => ({
    name,
    dims: [inp, out],
    type: GgmlType.F32,
    data: new Uint8Array(inp * out * 4),
  });
  return writeGguf({
    metadata: [
      kv.str("general.architecture", arch),
      kv.u32("general.file_type", 0),
      kv.u32(`${arch}.block_count`, 1),
      kv.u32(`${arch}.context_length`, 128),
      kv.u32(`${arch}.embedding_length`, hidden),
      kv.u32(`${arch}.attention.head_count`, 2),
      kv.u32(`${arch}.attention.head_count_kv`, 1),
    ],
    tensors: [
      matrix("token_embd.weight", hidden, 4),
      matrix("blk.0.attn_q.weight", hidden, hidden),
      matrix("blk.0.attn_k.weight", hidden, hidden / 2),
      matrix("blk.0.attn_v.weight", hidden, hidden / 2),
    ],
  });
}

const lora = (module: string, side: "A" | "B", shape: number[]) => ({
  name: `base_model.model.model.layers.0.self_attn.${module}.lora_${side}.weight`,
  dtype: "F32",
  shape,
  data: new Uint8Array(shape[0]! * shape[1]! * 4),
});
const CONFIG = { peft_type: "LORA", r: 2, lora_alpha: 4, target_modules: ["q_proj", "k_proj"] };

/** A valid adapter for baseGguf(); `change` edits the files before they are uploaded. */
function adapter(change: (files: Map<string, Uint8Array>) => void = () => {}): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>([
    ["adapter_config.json", enc.encode(JSON.stringify(CONFIG))],
    [
      "adapter_model.safetensors",
      writeSafetensors([
        lora("q_proj", "A", [2, 8]),
        lora("q_proj", "B", [8, 2]),
        lora("k_proj", "A", [2, 8]),
        lora("k_proj", "B", [4, 2]),
      ]),
    ],
  ]);
  change(files);
  return files;
}
const withConfig = (over: Record<string, unknown>) => (f: Map<string, Uint8Array>) =>
  f.set("adapter_config.json", enc.encode(JSON.stringify({ ...CONFIG, ...over })));

async function uploadAll(files: Map<string, Uint8Array>): Promise<Record<string, string>> {
  const map: Record<string, string> = {};
  for (const [name, bytes] of files) {
    expect([200, 201]).toContain((await upload(tenant.key, bytes)).status);
    map[name] = digest(bytes);
  }
  return map;
}

async function createBase(bytes = baseGguf()): Promise<void> {
  await uploadAll(new Map([["base.gguf", bytes]]));
  const res = await call("POST", "/api/create", {
    key: tenant.key,
    body: { model: "base", files: { "base.gguf": digest(bytes) } },
  });
  expect(res.status).toBe(200);
  expect((await ndjsonLines(res)).at(-1)).toEqual({ status: "success" });
}

const create = (body: Record<string, unknown>) =>
  call("POST", "/api/create", { key: tenant.key, body: { model: "tuned", ...body } });

beforeEach(async () => {
  await resetFleet();
  tenant = await newTenant(`adapter-${crypto.randomUUID().slice(0, 8)}`);
});
afterEach(() => {
  restore?.();
  restore = undefined;
});

describe("create with a safetensors adapter: bad input is a 400 that changes nothing", () => {
  it.each<[string, (f: Map<string, Uint8Array>) => void, string, Uint8Array?]>([
    ["a rank other than r", withConfig({ r: 4 }), "do not have rank r=4"],
    [
      "an unknown target module",
      withConfig({ target_modules: ["q_proj", "w_pack"] }),
      'target module "w_pack" is not supported',
    ],
    [
      "an adapter for a wider base",
      (f) =>
        f.set(
          "adapter_model.safetensors",
          writeSafetensors([lora("q_proj", "A", [2, 16]), lora("q_proj", "B", [16, 2])]),
        ),
      "do not fit the base model's blk.0.attn_q.weight (8 × 8): wrong base model?",
    ],
    [
      "a base whose architecture takes no adapters",
      () => {},
      "LoRA adapters on gpt2 models are not supported",
      baseGguf("gpt2"),
    ],
    [
      "a LoRA on q_proj for a phi3 base, whose q/k/v are fused",
      () => {},
      "targets q_proj, but phi3 models fuse it into qkv_proj: a LoRA on a part of a fused weight cannot be applied",
      baseGguf("phi3"),
    ],
    [
      "a lora_B missing",
      (f) => f.set("adapter_model.safetensors", writeSafetensors([lora("q_proj", "A", [2, 8])])),
      "has no lora_B beside it",
    ],
    ["DoRA", withConfig({ use_dora: true }), "DoRA adapters (use_dora) are not supported"],
    [
      "no adapter_config.json",
      (f) => f.delete("adapter_config.json"),
      "adapter_config.json is required to convert a safetensors adapter",
    ],
    [
      "another safetensors file",
      (f) => f.set("extra.safetensors", writeSafetensors([])),
      "unexpected adapter file extra.safetensors",
    ],
    [
      "adapter_config.json not JSON",
      (f) => f.set("adapter_config.json", enc.encode("r=8")),
      "adapter_config.json is not valid JSON",
    ],
  ])("%s", async (_label, change, message, base) => {
    await createBase(base);
    const adapters = await uploadAll(adapter(change));
    const before = await snapshot();
    const res = await create({ from: "base", adapters });
    expect(res.status).toBe(400);
    expect((await json<{ error: string }>(res)).error).toContain(message);
    expect(await snapshot()).toBe(before);
  });

  it("refuses an adapter on a checkpoint converted in the same request, with Ollama's text", async () => {
    const adapters = await uploadAll(adapter());
    const res = await create({ files: { "model.safetensors": adapters["adapter_model.safetensors"] }, adapters });
    expect(res.status).toBe(400);
    expect((await json<{ error: string }>(res)).error).toBe("safetensors imports do not support adapters");
  });
});

describe("create with a safetensors adapter: the convert job", () => {
  const converted = writeGguf({
    metadata: [
      kv.str("general.architecture", "llama"),
      kv.str("general.type", "adapter"),
      kv.str("adapter.type", "lora"),
      kv.f32("adapter.lora.alpha", 4),
    ],
    tensors: [{ name: "blk.0.attn_q.weight.lora_a", dims: [8, 2], type: GgmlType.F32, data: new Uint8Array(64) }],
  });
  const producing: RunnerHandler = async () => {
    await env.BLOBS.put(blobKey(digest(converted)), converted);
    const lines = [
      { event: "progress", phase: "fetch", completed: 1, total: 1 },
      { event: "progress", phase: "convert", completed: 4, total: 4 },
      { event: "progress", phase: "upload", completed: converted.length, total: converted.length },
      { event: "done", digest: digest(converted), size: converted.length },
    ];
    return new Response(new Blob(lines.map(ndjsonLine)).stream(), {
      headers: { "content-type": "application/x-ndjson" },
    });
  };

  it.each<[string, (adapters: Record<string, string>) => Record<string, unknown>]>([
    ["from and adapters", (adapters) => ({ from: "base", adapters })],
    [
      "a Modelfile's FROM, the adapter's files as ollama create sends them",
      (adapters) => ({ modelfile: "FROM base", adapters }),
    ],
  ])(
    "%s: the runner gets the adapter and the base's shape; its GGUF becomes the adapter layer",
    async (_label, body) => {
      await createBase();
      await heartbeat(runnerStatus("r1"));
      const fake = fakeRunners({ r1: producing });
      restore = fake.restore;
      const adapters = await uploadAll(adapter((f) => f.set("README.md", enc.encode("# tuned"))));
      const res = await create(body(adapters));
      expect(res.status).toBe(200);
      const statuses = (await ndjsonLines(res)).map((l) => l.status);
      expect(statuses).toContain("converting adapter");
      expect(statuses).toContain(`creating new layer ${digest(converted)}`);
      expect(statuses.slice(-2)).toEqual(["writing manifest", "success"]);
      expect(fake.received.map((r) => r.path)).toEqual(["/v1/convert"]);
      const sent = fake.received[0]!.body as { files: { name: string }[]; adapter_base: unknown };
      expect(sent.files.map((f) => f.name).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors"]);
      expect(sent.adapter_base).toEqual({
        architecture: "llama",
        layers: 1,
        heads: 2,
        kv_heads: 1,
        tensors: [
          { name: "blk.0.attn_q.weight", dims: [8, 8] },
          { name: "blk.0.attn_k.weight", dims: [8, 4] },
        ],
      });
      const show = await json<{ modelfile: string }>(
        await call("POST", "/api/show", { key: tenant.key, body: { model: "tuned" } }),
      );
      expect(show.modelfile).toContain(`ADAPTER ${digest(converted)}`);
      expect((await call("HEAD", `/api/blobs/${digest(converted)}`, { key: tenant.key })).status).toBe(200);
    },
  );

  it("on a base that has an adapter already: both adapter layers, the base's unchanged", async () => {
    await createBase();
    const earlier = writeGguf({
      metadata: [
        kv.str("general.architecture", "llama"),
        kv.str("general.type", "adapter"),
        kv.str("adapter.type", "lora"),
        kv.f32("adapter.lora.alpha", 2),
      ],
      tensors: [{ name: "blk.0.attn_v.weight.lora_a", dims: [8, 2], type: GgmlType.F32, data: new Uint8Array(64) }],
    });
    await uploadAll(new Map([["earlier.gguf", earlier]]));
    const first = await create({ model: "tuned-once", from: "base", adapters: { "earlier.gguf": digest(earlier) } });
    expect((await ndjsonLines(first)).at(-1)).toEqual({ status: "success" });
    await heartbeat(runnerStatus("r1"));
    const fake = fakeRunners({ r1: producing });
    restore = fake.restore;
    const res = await create({ from: "tuned-once", adapters: await uploadAll(adapter()) });
    expect((await ndjsonLines(res)).at(-1)).toEqual({ status: "success" });
    const show = await json<{ modelfile: string }>(
      await call("POST", "/api/show", { key: tenant.key, body: { model: "tuned" } }),
    );
    expect(show.modelfile).toContain(`ADAPTER ${digest(earlier)}`);
    expect(show.modelfile).toContain(`ADAPTER ${digest(converted)}`);
  });

  it("a runner's result that is not an adapter ends the create and writes no model", async () => {
    await createBase();
    await heartbeat(runnerStatus("r1"));
    const notAdapter = baseGguf();
    const fake = fakeRunners({
      r1: async () => {
        await env.BLOBS.put(blobKey(digest(notAdapter)), notAdapter);
        return new Response(ndjsonLine({ event: "done", digest: digest(notAdapter), size: notAdapter.length }), {
          headers: { "content-type": "application/x-ndjson" },
        });
      },
    });
    restore = fake.restore;
    const res = await create({ from: "base", adapters: await uploadAll(adapter()) });
    expect((await ndjsonLines(res)).at(-1)).toEqual({ error: "the converted adapter is not a llama adapter (llama)" });
    const tags = await json<{ models: { name: string }[] }>(await call("GET", "/api/tags", { key: tenant.key }));
    expect(tags.models.map((m) => m.name)).toEqual(["base:latest"]);
  });
});
