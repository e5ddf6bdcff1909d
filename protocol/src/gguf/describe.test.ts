import { describe, expect, it } from "vitest";
import { describeModel, humanNumber, modelInfo, projectorOutputWidth, shortestFloat32, tensorsInfo } from "./describe";
import { readGgufHeader } from "./reader";
import { bytesSource } from "./source";
import { fileTypeName, GgmlType, GgufValueType, ggmlTensorBytes } from "./types";
import { type GgufMetadataEntry, type GgufTensorInput, kv, writeGguf } from "./writer";

function tensor(name: string, type: GgmlType, dims: number[]): GgufTensorInput {
  return { name, type, dims, data: new Uint8Array(ggmlTensorBytes(type, dims)!) };
}

async function header(metadata: GgufMetadataEntry[], tensors: GgufTensorInput[] = []) {
  return readGgufHeader(bytesSource(writeGguf({ metadata, tensors })));
}

describe("humanNumber (Ollama's format.HumanNumber)", () => {
  const cases: [number | bigint, string][] = [
    [0, "0"],
    [999, "999"],
    [1000, "1K"],
    [1499, "1K"],
    [1500, "2K"], // an exact tie: Go rounds half to even
    [2500, "2K"],
    [999_999, "1000K"],
    [1_000_000, "1M"],
    [136_730_000, "136.73M"],
    [1_125_000, "1.12M"], // exact tie, half to even (toFixed would say 1.13)
    [1_135_000, "1.14M"],
    [24_000_000, "24M"],
    [1_000_000_000, "1B"],
    [1_250_000_000, "1.2B"], // exact tie
    [1_050_000_000, "1.1B"], // 1.05 is stored a little above the tie
    [7_000_000_000, "7B"],
    [8_030_261_248, "8.0B"],
    [70_553_706_496n, "70.6B"],
  ];
  it.each(cases)("%s → %s", (n, expected) => expect(humanNumber(n)).toBe(expected));
});

describe("fileTypeName", () => {
  const cases: [number, string][] = [
    [0, "F32"],
    [1, "F16"],
    [2, "Q4_0"],
    [4, "MXFP4"],
    [7, "Q8_0"],
    [15, "Q4_K_M"],
    [18, "Q6_K"],
    [32, "BF16"],
    [19, "unknown"], // IQ2_XXS: Ollama names no IQ type
    [1024, "unknown"],
  ];
  it.each(cases)("%i → %s", (n, expected) => expect(fileTypeName(n)).toBe(expected));
});

describe("describeModel", () => {
  it("reads family, sizes and the named file type", async () => {
    const h = await header(
      [
        kv.str("general.architecture", "llama"),
        kv.u32("general.file_type", 15),
        kv.u32("llama.context_length", 4096),
        kv.u64("llama.embedding_length", 64n),
      ],
      [tensor("a", GgmlType.Q4_K, [256, 1000]), tensor("b", GgmlType.F32, [730])],
    );
    expect(describeModel(h)).toEqual({
      format: "gguf",
      family: "llama",
      families: ["llama"],
      parameter_size: "257K",
      quantization_level: "Q4_K_M",
      context_length: 4096,
      embedding_length: 64,
    });
  });

  it("derives the quantization from the tensor type holding most elements when file_type is absent", async () => {
    const h = await header(
      [kv.str("general.architecture", "qwen2")],
      [tensor("n1", GgmlType.F32, [64]), tensor("n2", GgmlType.F32, [64]), tensor("w", GgmlType.Q8_0, [32, 8])],
    );
    expect(describeModel(h)).toMatchObject({ family: "qwen2", quantization_level: "Q8_0", parameter_size: "384" });
    expect(describeModel(h).context_length).toBeUndefined();
  });

  it("says unknown when nothing tells", async () => {
    expect(describeModel(await header([]))).toMatchObject({ family: "unknown", quantization_level: "unknown" });
  });
});

describe("modelInfo", () => {
  const metadata = [
    kv.str("general.architecture", "llama"),
    kv.str("general.name", "tiny"),
    kv.str("tokenizer.chat_template", "{{ x }}"),
    kv.u64("general.parameter_count", 1n), // replaced by the real count, as Ollama does
    kv.f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
    kv.u32("llama.context_length", 4096),
    kv.u64("big", (1n << 60n) + 1n),
    kv.strArr("tokenizer.ggml.tokens", ["a", "b", "c", "d", "e", "f"]),
    kv.strArr("tokenizer.ggml.merges", ["a b"]),
    kv.i32Arr("tokenizer.ggml.token_type", [1, 1, 3]),
    kv.arr("empty", GgufValueType.INT32, []),
    kv.arr("nested", GgufValueType.ARRAY, [{ arrayType: GgufValueType.FLOAT32, values: [0.1] }]),
  ];
  const tensors = [tensor("w", GgmlType.F16, [10, 3])];

  it("shortens every non-empty array to null without verbose, like Ollama", async () => {
    const info = modelInfo(await header(metadata, tensors), false);
    expect(info).toEqual({
      big: 2 ** 60,
      empty: [],
      "general.architecture": "llama",
      "general.parameter_count": 30,
      "llama.attention.layer_norm_rms_epsilon": 0.00001,
      "llama.context_length": 4096,
      nested: null,
      "tokenizer.ggml.merges": null,
      "tokenizer.ggml.token_type": null,
      "tokenizer.ggml.tokens": null,
    });
    expect(Object.keys(info)).toEqual([...Object.keys(info)].sort());
    expect(JSON.stringify(info)).toContain('"llama.attention.layer_norm_rms_epsilon":0.00001');
  });

  it("keeps arrays with verbose, converted to JSON-safe values", async () => {
    const info = modelInfo(await header(metadata, tensors), true);
    expect(info["tokenizer.ggml.tokens"]).toEqual(["a", "b", "c", "d", "e", "f"]);
    expect(info["tokenizer.ggml.token_type"]).toEqual([1, 1, 3]);
    expect(info.nested).toEqual([[0.1]]);
    expect(() => JSON.stringify(info)).not.toThrow();
  });
});

describe("shortestFloat32", () => {
  const cases: [number, number][] = [
    [Math.fround(1e-5), 0.00001],
    [Math.fround(0.1), 0.1],
    [500000, 500000],
    [Math.fround(1 / 3), 0.33333334],
    [0, 0],
  ];
  it.each(cases)("%s → %s", (input, expected) => expect(shortestFloat32(input)).toBe(expected));
});

describe("tensorsInfo", () => {
  it("lists name, Ollama's type name and the ggml-order shape", async () => {
    const h = await header(
      [],
      [tensor("a", GgmlType.Q4_K, [256, 2]), tensor("b", GgmlType.IQ4_XS, [256]), tensor("c", GgmlType.F32, [5])],
    );
    expect(tensorsInfo(h)).toEqual([
      { name: "a", type: "Q4_K", shape: [256, 2] },
      { name: "b", type: "unknown", shape: [256] },
      { name: "c", type: "F32", shape: [5] },
    ]);
  });
});

describe("projectorOutputWidth", () => {
  const f32 = GgmlType.F32;
  const projDim = kv.u32("clip.vision.projection_dim", 99);
  const cases: [string, GgufMetadataEntry[], GgufTensorInput[], number | undefined][] = [
    ["LLaVA mlp: mm.2's bias", [projDim], [tensor("mm.0.weight", f32, [32, 64]), tensor("mm.2.bias", f32, [64])], 64],
    [
      "the last matrix's second dimension",
      [],
      [tensor("mm.0.weight", f32, [8, 16]), tensor("mm.3.weight", f32, [16, 48])],
      48,
    ],
    ["a final norm (mlp_norm)", [], [tensor("mm.3.weight", f32, [16, 48]), tensor("mm.4.weight", f32, [48])], 48],
    ["mm.10 after mm.9 (numeric order)", [], [tensor("mm.10.bias", f32, [7]), tensor("mm.9.bias", f32, [5])], 7],
    ["no mm.N tensor: projection_dim", [projDim], [tensor("mm.input_projection.weight", f32, [4, 4])], 99],
    ["neither", [], [tensor("v.patch_embd.weight", f32, [4])], undefined],
  ];
  it.each(cases)("%s", async (_, metadata, tensors, expected) => {
    expect(projectorOutputWidth(await header(metadata, tensors))).toBe(expected);
  });
});
