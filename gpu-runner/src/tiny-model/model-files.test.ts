import { describe, expect, it } from "vitest";
import { type GgufHeader, readGgufHeader } from "../../../protocol/src/gguf/reader";
import { bytesSource } from "../../../protocol/src/gguf/source";
import { GgmlType } from "../../../protocol/src/gguf/types";
import { TINY_MODEL_DEFAULT_SEED, writeTinyModel } from "./generate";
import { TINY_MODEL_HYPERPARAMETERS } from "./llama-gguf";
import { SCRIPT_LOGIT, scriptTokenIds, writeScriptedModel } from "./scripted";
import { MODEL_SCRIPTS } from "./scripts";
import { tinyVocabulary } from "./tokenizer";

const read = (bytes: Uint8Array) => readGgufHeader(bytesSource(bytes));
const vocab = tinyVocabulary();
const hp = TINY_MODEL_HYPERPARAMETERS;

function f16ToNumber(bits: number): number {
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  const magnitude = exponent === 0 ? mantissa * 2 ** -24 : (1 + mantissa / 1024) * 2 ** (exponent - 15);
  return bits & 0x8000 ? -magnitude : magnitude;
}

/** A 2-D F16 tensor as rows over its second (ggml "out") dimension. */
function f16Rows(bytes: Uint8Array, header: GgufHeader, name: string): number[][] {
  const tensor = header.tensors.find((t) => t.name === name)!;
  expect(tensor.type).toBe(GgmlType.F16);
  const [width, height] = tensor.dims as [number, number];
  const view = new DataView(bytes.buffer, bytes.byteOffset + tensor.fileOffset, tensor.size);
  return Array.from({ length: height }, (_, r) =>
    Array.from({ length: width }, (_, c) => f16ToNumber(view.getUint16((r * width + c) * 2, true))),
  );
}

describe("writeTinyModel", () => {
  it("is byte-identical for the same seed and differs for another", () => {
    // Buffer.equals, not toEqual: a deep compare of 300 KB element by element takes a second.
    const a = Buffer.from(writeTinyModel());
    expect(a.equals(writeTinyModel({ seed: TINY_MODEL_DEFAULT_SEED }))).toBe(true);
    expect(a.equals(writeTinyModel({ seed: 7 }))).toBe(false);
  });

  it.each([-1, 1.5, 2 ** 32, Number.NaN])("refuses seed %d", (seed) => {
    expect(() => writeTinyModel({ seed })).toThrow(/unsigned 32-bit/);
  });

  it("writes a llama GGUF with every hyperparameter llama.cpp reads", async () => {
    const bytes = writeTinyModel();
    expect(bytes.length).toBeLessThan(1024 * 1024);
    const { metadata: m, tensors } = await read(bytes);
    expect(m["general.architecture"]).toBe("llama");
    expect(m["general.file_type"]).toBe(1);
    expect(m["llama.context_length"]).toBeGreaterThanOrEqual(4096);
    expect([m["llama.embedding_length"], m["llama.block_count"], m["llama.feed_forward_length"]]).toEqual([64, 2, 128]);
    expect([
      m["llama.attention.head_count"],
      m["llama.attention.head_count_kv"],
      m["llama.rope.dimension_count"],
    ]).toEqual([4, 2, 16]);
    expect(m["llama.attention.layer_norm_rms_epsilon"]).toBeCloseTo(1e-5);
    expect(m["llama.vocab_size"]).toBe(vocab.tokens.length);
    expect(m["tokenizer.ggml.model"]).toBe("gpt2");
    expect(m["tokenizer.ggml.pre"]).toBe("default");
    expect(m["tokenizer.ggml.eos_token_id"]).toBe(vocab.imEndId);
    expect(m["tokenizer.ggml.tokens"]).toEqual(vocab.tokens);
    expect(typeof m["tokenizer.chat_template"]).toBe("string");
    const elements = tensors.reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0);
    expect(m["general.parameter_count"]).toBe(BigInt(elements));
    expect(tensors).toHaveLength(3 + 9 * hp.layers);
  });

  it.each([
    ["f16", GgmlType.F16, 1],
    ["f32", GgmlType.F32, 0],
    ["q8_0", GgmlType.Q8_0, 7],
  ] as const)("stores %s matrices, F32 norms and ggml [in, out] dims", async (weightType, ggmlType, fileType) => {
    const { metadata, tensors } = await read(writeTinyModel({ weightType }));
    expect(metadata["general.file_type"]).toBe(fileType);
    const byName = new Map(tensors.map((t) => [t.name, t]));
    expect(byName.get("token_embd.weight")).toMatchObject({ dims: [64, vocab.tokens.length], type: ggmlType });
    expect(byName.get("output.weight")).toMatchObject({ dims: [64, vocab.tokens.length], type: ggmlType });
    expect(byName.get("blk.1.attn_k.weight")).toMatchObject({ dims: [64, 32], type: ggmlType });
    expect(byName.get("blk.1.ffn_down.weight")).toMatchObject({ dims: [128, 64], type: ggmlType });
    for (const name of ["output_norm.weight", "blk.0.attn_norm.weight", "blk.1.ffn_norm.weight"]) {
      expect(byName.get(name)).toMatchObject({ dims: [64], type: GgmlType.F32 });
    }
  });
});

describe("writeScriptedModel", () => {
  it.each(Object.entries(MODEL_SCRIPTS))("%s: the output matrix chains prompt → pieces → EOS", async (_, script) => {
    const bytes = writeScriptedModel(script);
    const header = await read(bytes);
    const embedding = f16Rows(bytes, header, "token_embd.weight");
    const output = f16Rows(bytes, header, "output.weight");
    const direction = (token: number) => embedding[token]!.indexOf(1);
    const successor = (token: number) => {
      const d = direction(token);
      const logits = output.map((row) => row[d]!);
      return logits.indexOf(Math.max(...logits));
    };
    const chain = [];
    for (let token = vocab.tokens.indexOf("Ċ"); chain.length < 20; ) {
      token = successor(token);
      chain.push(token);
      if (token === vocab.imEndId) break;
    }
    expect(chain).toEqual([...scriptTokenIds(script), vocab.imEndId]);
    expect(Math.max(...output.flat())).toBe(SCRIPT_LOGIT);
    // Each layer writes nothing into the residual stream.
    expect(
      f16Rows(bytes, header, "blk.0.attn_output.weight")
        .flat()
        .every((x) => x === 0),
    ).toBe(true);
    expect(
      f16Rows(bytes, header, "blk.1.ffn_down.weight")
        .flat()
        .every((x) => x === 0),
    ).toBe(true);
  });

  it("names each model after its script", async () => {
    expect((await read(writeScriptedModel("tool"))).metadata["general.name"]).toBe("corral-scripted-tool");
    expect((await read(writeScriptedModel("sentence"))).metadata["general.name"]).toBe("corral-scripted-sentence");
  });
});
