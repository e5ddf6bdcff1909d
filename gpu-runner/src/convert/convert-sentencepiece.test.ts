import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  tinySentencePieceConfig,
  tinySentencePieces,
  writeSentencePieceModel,
} from "@corral/protocol/sentencepiece-testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tinyCheckpoint } from "./checkpoint-fixture";
import { convertFiles, expectSameGguf, greedyText, header } from "./convert-testkit";
import { type SentencePieceCheckpointOptions, tinySentencePieceCheckpoint } from "./sentencepiece-fixture";

// Gemma 2, Gemma 3 and Phi-3 checkpoints with a SentencePiece tokenizer.model, converted and compared with the GGUF
// built independently beside each (sentencepiece-fixture.ts): tensor for tensor, every tokenizer key, and the same
// greedy text from llama.cpp, which loading them also proves accepts the keys and tensor names.

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "corral-convert-spm-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOKENIZER_KEYS = [
  "general.architecture",
  "general.file_type",
  "tokenizer.ggml.model",
  "tokenizer.ggml.pre",
  "tokenizer.ggml.tokens",
  "tokenizer.ggml.scores",
  "tokenizer.ggml.token_type",
  "tokenizer.ggml.bos_token_id",
  "tokenizer.ggml.eos_token_id",
  "tokenizer.ggml.padding_token_id",
  "tokenizer.ggml.unknown_token_id",
  "tokenizer.ggml.add_bos_token",
  "tokenizer.ggml.add_eos_token",
  "tokenizer.ggml.add_space_prefix",
  "tokenizer.chat_template",
];

const CASES: [string, SentencePieceCheckpointOptions][] = [
  ["gemma2 (norms +1, soft-capping, sliding window)", { architecture: "Gemma2ForCausalLM" }],
  ["gemma2, BF16 kept as BF16", { architecture: "Gemma2ForCausalLM", dtype: "BF16", seed: 3 }],
  ["gemma3 (q/k norms, local rope base)", { architecture: "Gemma3ForCausalLM" }],
  ["phi3 (fused qkv and gate_up)", { architecture: "Phi3ForCausalLM" }],
  ["phi3 with longrope factors", { architecture: "Phi3ForCausalLM", longrope: true }],
];

describe("SentencePiece architectures: equal to the independently built GGUF, and llama.cpp runs them alike", () => {
  it.each(CASES)("%s", async (label, options) => {
    const { files, reference } = tinySentencePieceCheckpoint(options);
    const out = convertFiles(dir, files);
    await expectSameGguf(out, reference, TOKENIZER_KEYS);
    const slug = label.replace(/\W+/g, "-");
    const text = await greedyText(dir, out, `${slug}-converted.gguf`);
    expect(text.length).toBeGreaterThan(0);
    expect(text).toBe(await greedyText(dir, reference, `${slug}-reference.gguf`));
  });

  it("gemma2 drops a checkpoint's lm_head (llama.cpp reuses the embedding)", async () => {
    const { files } = tinySentencePieceCheckpoint({ architecture: "Gemma2ForCausalLM", lmHead: true });
    const out = convertFiles(dir, files);
    expect((await header(out)).tensors.map((t) => t.name)).not.toContain("output.weight");
  });

  it("a llama with only a tokenizer.model reads it, padded to the embedding's rows", async () => {
    const { files } = tinyCheckpoint();
    files.delete("tokenizer.json");
    files.set("tokenizer.model", writeSentencePieceModel(tinySentencePieces()));
    const h = await header(convertFiles(dir, files));
    const rows = h.tensors.find((t) => t.name === "token_embd.weight")!.dims[1]!;
    const pieces = tinySentencePieces().map((p) => p.piece);
    const tokens = h.metadata["tokenizer.ggml.tokens"] as string[];
    expect(h.metadata["tokenizer.ggml.model"]).toBe("llama");
    expect(tokens.slice(0, pieces.length)).toEqual(pieces);
    expect(tokens).toHaveLength(rows);
    expect(tokens.at(-1)).toBe(`[PAD${rows - 1}]`);
    expect(h.metadata["tokenizer.ggml.add_space_prefix"]).toBeUndefined();
  });

  it("added_tokens.json entries become user-defined tokens scored -1000", async () => {
    const { files } = tinySentencePieceCheckpoint({ architecture: "Gemma3ForCausalLM" });
    const id = tinySentencePieces().length; // the first [PAD] row
    files.set("added_tokens.json", new TextEncoder().encode(JSON.stringify({ "<extra>": id })));
    const h = await header(convertFiles(dir, files));
    expect((h.metadata["tokenizer.ggml.tokens"] as string[])[id]).toBe("<extra>");
    expect((h.metadata["tokenizer.ggml.token_type"] as number[])[id]).toBe(4);
    expect((h.metadata["tokenizer.ggml.scores"] as number[])[id]).toBe(-1000);
  });
});

describe("a bad tokenizer.model is a 400 that says what is wrong", () => {
  const model = () => writeSentencePieceModel(tinySentencePieces());
  it.each<[string, () => Uint8Array, RegExp]>([
    ["truncated inside a piece", () => model().subarray(0, 20), /invalid tokenizer\.model: .* past its end/],
    ["a varint that never ends", () => new Uint8Array(12).fill(0xff), /varint longer than 10 bytes/],
    ["a varint cut off", () => new Uint8Array([0x0a, 0x80]), /ends inside a varint/],
    ["a length over the file", () => new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2]), /past its end/],
    ["a group wire type", () => new Uint8Array([0x2b]), /unsupported wire type 3/],
    ["a piece that is not UTF-8", () => new Uint8Array([0x0a, 0x04, 0x0a, 0x02, 0xc3, 0x28]), /not valid UTF-8/],
    ["no pieces", () => new Uint8Array([0x12, 0x02, 0x18, 0x01]), /it has no pieces/],
    ["a word model", () => writeSentencePieceModel(tinySentencePieces(), 3), /model type 3 is not supported/],
    ["an unknown piece type", () => new Uint8Array([0x0a, 0x05, 0x0a, 0x01, 0x61, 0x18, 0x09]), /unknown type 9/],
  ])("%s", (_label, bytes, message) => {
    const { files } = tinySentencePieceCheckpoint({ architecture: "Gemma2ForCausalLM" });
    files.set("tokenizer.model", bytes());
    expect(() => convertFiles(dir, files)).toThrow(message);
  });

  it("a missing tokenizer.model for an architecture that needs one", () => {
    const { files } = tinySentencePieceCheckpoint({ architecture: "Phi3ForCausalLM" });
    files.delete("tokenizer.model");
    expect(() => convertFiles(dir, files)).toThrow(/tokenizer\.model is required/);
  });

  it("config values out of range name the key", () => {
    const { files } = tinySentencePieceCheckpoint({ architecture: "Phi3ForCausalLM", longrope: true });
    const config = JSON.parse(new TextDecoder().decode(files.get("config.json")));
    config.rope_scaling.long_factor = [1, 2];
    files.set("config.json", new TextEncoder().encode(JSON.stringify(config)));
    expect(() => convertFiles(dir, files)).toThrow(/rope_scaling\.long_factor must be 8 numbers/);
  });

  it("tokenizer_config.json special tokens are looked up in tokenizer.json's added tokens first", async () => {
    const { files } = tinySentencePieceCheckpoint({ architecture: "Gemma2ForCausalLM" });
    const start = tinySentencePieces().findIndex((p) => p.piece === "<start_of_turn>");
    const enc = new TextEncoder();
    files.set(
      "tokenizer_config.json",
      enc.encode(JSON.stringify(tinySentencePieceConfig({ eos_token: "<start_of_turn>" }))),
    );
    files.set(
      "tokenizer.json",
      enc.encode(JSON.stringify({ added_tokens: [{ id: start, content: "<start_of_turn>" }] })),
    );
    expect((await header(convertFiles(dir, files))).metadata["tokenizer.ggml.eos_token_id"]).toBe(start);
  });
});
