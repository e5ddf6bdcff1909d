/**
 * A PEFT LoRA adapter on a base model across processes, as `ollama create` with `FROM base` and `ADAPTER ./dir` does
 * it: the official `ollama` client uploads adapter_config.json and adapter_model.safetensors and sends the `adapters`
 * map; the edge checks the adapter against the base, the real runner converts it in its child process, and inference
 * applies it: greedy text changes from the base's, and equals what the independently built GGUF adapter
 * (adapter-fixture.ts) gives on the same base.
 */
import { createHash, randomBytes } from "node:crypto";
import { type CreateRequest, Ollama } from "ollama";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { type AdapterArchitecture, tinyAdapter } from "../gpu-runner/src/convert/adapter-fixture";
import { tinyCheckpoint } from "../gpu-runner/src/convert/checkpoint-fixture";
import { tinySentencePieceCheckpoint } from "../gpu-runner/src/convert/sentencepiece-fixture";

const { url, adminKey } = inject("stack");
const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

let key: string;
let ollama: Ollama;

beforeAll(async () => {
  const admin = { authorization: `Bearer ${adminKey}`, "content-type": "application/json" };
  const created = await fetch(`${url}/admin/tenants`, {
    method: "POST",
    headers: admin,
    body: JSON.stringify({ name: `adapter-${randomBytes(4).toString("hex")}` }),
  });
  const { id } = (await created.json()) as { id: string };
  const issued = await fetch(`${url}/admin/tenants/${id}/keys`, { method: "POST", headers: admin, body: "{}" });
  ({ key } = (await issued.json()) as { key: string });
  ollama = new Ollama({ host: url, headers: { Authorization: `Bearer ${key}` } });
});

async function uploadAll(files: Map<string, Uint8Array>): Promise<Record<string, string>> {
  const map: Record<string, string> = {};
  for (const [name, bytes] of files) {
    const digest = sha256(bytes);
    const res = await fetch(`${url}/api/blobs/${digest}`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-length": String(bytes.length) },
      body: bytes,
    });
    expect([200, 201]).toContain(res.status);
    map[name] = digest;
  }
  return map;
}

/** The client's CreateRequest type lacks `files`, which its create sends as given. */
type FilesRequest = Omit<CreateRequest, "stream"> & { files?: Record<string, string> };

async function create(request: FilesRequest): Promise<string[]> {
  const statuses: string[] = [];
  for await (const line of await ollama.create({ ...request, stream: true } as CreateRequest & { stream: true })) {
    statuses.push(line.status);
  }
  return statuses;
}

const greedy = async (model: string) =>
  (
    await ollama.generate({
      model,
      prompt: "the quick brown",
      raw: true,
      keep_alive: 0,
      options: { temperature: 0, num_predict: 12, seed: 1 },
    })
  ).response;

describe("create with a safetensors LoRA adapter", () => {
  it.each<[AdapterArchitecture, () => Uint8Array, string[]?]>([
    ["llama", () => tinyCheckpoint({ seed: 31, architecture: "LlamaForCausalLM" }).reference],
    ["qwen2", () => tinyCheckpoint({ seed: 31, architecture: "Qwen2ForCausalLM" }).reference],
    [
      "phi3",
      () => tinySentencePieceCheckpoint({ seed: 21, architecture: "Phi3ForCausalLM" }).reference,
      ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    ],
  ])(
    "%s: converted on the runner, applied by inference, as the reference GGUF adapter is",
    async (arch, baseModel, modules) => {
      await create({ model: `${arch}-base`, files: await uploadAll(new Map([["model.gguf", baseModel()]])) });
      const { files, reference } = tinyAdapter({ architecture: arch, alpha: 16, modules });

      const statuses = await create({ model: `${arch}-tuned`, from: `${arch}-base`, adapters: await uploadAll(files) });
      expect(statuses).toContain("converting adapter");
      expect(statuses.slice(-2)).toEqual(["writing manifest", "success"]);
      await create({
        model: `${arch}-tuned-reference`,
        from: `${arch}-base`,
        adapters: await uploadAll(new Map([["adapter.gguf", reference]])),
      });

      const plain = await greedy(`${arch}-base`);
      const tuned = await greedy(`${arch}-tuned`);
      expect(tuned?.length).toBeGreaterThan(0);
      expect(tuned).not.toBe(plain);
      expect(tuned).toBe(await greedy(`${arch}-tuned-reference`));
      expect((await ollama.show({ model: `${arch}-tuned` })).modelfile).toMatch(/^ADAPTER sha256:[0-9a-f]{64}$/m);
    },
  );

  it("refuses an adapter made for another base, naming the tensor, and creates nothing", async () => {
    const base = tinyCheckpoint({ seed: 32, hidden: 128 }).reference;
    await create({ model: "wide-base", files: await uploadAll(new Map([["model.gguf", base]])) });
    const { files } = tinyAdapter();
    await expect(create({ model: "misfit", from: "wide-base", adapters: await uploadAll(files) })).rejects.toThrow(
      "do not fit the base model's blk.0.attn_q.weight",
    );
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain("misfit:latest");
  });
});
