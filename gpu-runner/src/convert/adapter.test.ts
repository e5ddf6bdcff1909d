import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesSource, type GgufHeader, readGgufHeader } from "@corral/protocol";
import { adapterBaseFromHeader } from "@corral/protocol/checkpoint-lora";
import { isApiError } from "@corral/protocol/errors";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AdapterArchitecture, type AdapterOptions, tinyAdapter } from "./adapter-fixture";
import { tinyCheckpoint } from "./checkpoint-fixture";
import { greedyText } from "./convert-testkit";
import { convertInChild } from "./engine";
import { tinySentencePieceCheckpoint } from "./sentencepiece-fixture";

// PEFT adapters converted in the convert child, against the GGUF adapter built independently beside each
// (adapter-fixture.ts): tensor for tensor, byte for byte; and llama.cpp applying the converted adapter.

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "corral-adapter-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const header = (bytes: Uint8Array) => readGgufHeader(bytesSource(bytes));

function writeFiles(files: Map<string, Uint8Array>): Map<string, string> {
  const sub = mkdtempSync(join(dir, "files-"));
  let i = 0;
  return new Map(
    [...files].map(([name, bytes]) => {
      const path = join(sub, `blob-${i++}`);
      writeFileSync(path, bytes);
      return [name, path];
    }),
  );
}

const SENTENCEPIECE_BASES = {
  gemma2: "Gemma2ForCausalLM",
  gemma3: "Gemma3ForCausalLM",
  phi3: "Phi3ForCausalLM",
} as const;

/** The base GGUF (tinyCheckpoint's or sentencepiece-fixture's reference) an adapter of this architecture applies to. */
function baseModel(architecture: AdapterArchitecture): Uint8Array {
  if (architecture === "llama" || architecture === "qwen2") {
    return tinyCheckpoint({ architecture: architecture === "llama" ? "LlamaForCausalLM" : "Qwen2ForCausalLM" })
      .reference;
  }
  return tinySentencePieceCheckpoint({ architecture: SENTENCEPIECE_BASES[architecture] }).reference;
}

/** Every linear module of the architecture (phi3's fused ones). */
const allModules = (architecture: AdapterArchitecture) =>
  architecture === "phi3"
    ? ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
    : ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

async function convertAdapterFiles(
  files: Map<string, Uint8Array>,
  base: Uint8Array,
  outDir = mkdtempSync(join(dir, "out-")),
): Promise<string> {
  const { architecture, layers, heads, kvHeads, tensors } = adapterBaseFromHeader(await header(base));
  // Every 2-D base weight (the edge sends only those the adapter targets).
  const adapterBase = {
    architecture,
    layers,
    heads,
    kv_heads: kvHeads,
    tensors: [...tensors].map(([name, dims]) => ({ name, dims: [...dims] })),
  };
  const output = join(outDir, "adapter.gguf");
  await convertInChild({ files: writeFiles(files), output, adapterBase });
  return output;
}

function tensorBytes(bytes: Uint8Array, h: GgufHeader) {
  return new Map(
    h.tensors.map((t) => [
      t.name,
      { dims: t.dims, type: t.type, data: Buffer.from(bytes.subarray(t.fileOffset, t.fileOffset + t.size)) },
    ]),
  );
}

const greedy = (modelBytes: Uint8Array, adapterPath?: string) =>
  greedyText(dir, modelBytes, `base-${Math.random().toString(36).slice(2)}.gguf`, adapterPath);

describe("convertAdapter: tensor for tensor equal to the independently built GGUF adapter", () => {
  it.each<[string, AdapterOptions]>([
    ["llama q/k/v/o (lora_b of q and k permuted)", {}],
    [
      "llama every linear module, BF16, rank 8",
      {
        modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        dtype: "BF16",
        rank: 8,
      },
    ],
    ["qwen2 q/k/v (no permutation)", { architecture: "qwen2", modules: ["q_proj", "k_proj", "v_proj"] }],
    ["gemma2 every linear module (no permutation)", { architecture: "gemma2", modules: allModules("gemma2") }],
    ["gemma3 every linear module, BF16", { architecture: "gemma3", modules: allModules("gemma3"), dtype: "BF16" }],
    ["phi3 fused qkv_proj and gate_up_proj, o/down", { architecture: "phi3", modules: allModules("phi3") }],
  ])("%s", async (_label, options) => {
    const { files, reference } = tinyAdapter(options);
    const out = readFileSync(await convertAdapterFiles(files, baseModel(options.architecture ?? "llama")));
    const [got, want] = [await header(out), await header(reference)];
    for (const key of ["general.architecture", "general.type", "adapter.type", "adapter.lora.alpha"]) {
      expect(got.metadata[key], key).toEqual(want.metadata[key]);
    }
    const gotTensors = tensorBytes(out, got);
    const wantTensors = tensorBytes(reference, want);
    expect([...gotTensors.keys()].sort()).toEqual([...wantTensors.keys()].sort());
    for (const [name, t] of wantTensors) expect(gotTensors.get(name), name).toEqual(t);
  });
});

describe("llama.cpp applies the converted adapter", () => {
  it.each<[AdapterArchitecture]>([["llama"], ["qwen2"], ["gemma2"], ["gemma3"], ["phi3"]])(
    "%s: greedy text changes with it, as with the reference adapter",
    async (arch) => {
      const base = baseModel(arch);
      const { files, reference } = tinyAdapter({
        architecture: arch,
        alpha: 16,
        // q/k/v/o by default; phi3 has only fused q/k/v.
        modules: arch === "phi3" ? allModules(arch) : undefined,
      });
      const converted = await convertAdapterFiles(files, base);
      const referencePath = join(dir, `${arch}-reference-adapter.gguf`);
      writeFileSync(referencePath, reference);
      const plain = await greedy(base);
      const adapted = await greedy(base, converted);
      expect(adapted).not.toBe(plain);
      expect(adapted).toBe(await greedy(base, referencePath));
    },
  );
});

describe("convertAdapter in the child: bad adapters", () => {
  it("an adapter that does not fit its base is an ApiError 400 and leaves no file", async () => {
    const { files } = tinyAdapter({ architecture: "qwen2" });
    // A base twice as wide: the adapter's shapes name the wrong base.
    const base = tinyCheckpoint({ hidden: 128 }).reference;
    const outDir = mkdtempSync(join(dir, "bad-"));
    const err = await convertAdapterFiles(files, base, outDir).catch((e: unknown) => e);
    expect(isApiError(err) && err.status).toBe(400);
    expect((err as Error).message).toMatch(/do not fit the base model's blk\.0\.attn_q\.weight .*wrong base model/);
    expect(readdirSync(outDir)).toEqual([]);
  });
});
