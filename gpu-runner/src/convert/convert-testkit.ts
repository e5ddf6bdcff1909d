/**
 * What the converter's tests share: checkpoint files written under opaque names (as the runner's cache stores
 * blobs), conversion to a file, a GGUF's tensors by name, the comparison of a converted GGUF with its independently
 * built reference, and greedy text from llama.cpp.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bytesSource, type GgufHeader, readGgufHeader } from "@corral/protocol";
import type { Token } from "node-llama-cpp";
import { expect } from "vitest";
import { testLlama } from "../test-support";
import { convertCheckpoint } from "./convert";

export function writeFiles(dir: string, files: Map<string, Uint8Array>): Map<string, string> {
  const sub = mkdtempSync(join(dir, "ckpt-"));
  const paths = new Map<string, string>();
  let i = 0;
  for (const [name, bytes] of files) {
    // Stored under opaque names, as the runner's cache stores blobs: the converter goes by the given names only.
    const path = join(sub, `blob-${i++}`);
    writeFileSync(path, bytes);
    paths.set(name, path);
  }
  return paths;
}

export const header = (bytes: Uint8Array) => readGgufHeader(bytesSource(bytes));

export function tensorBytes(
  bytes: Uint8Array,
  h: GgufHeader,
): Map<string, { dims: number[]; type: number; data: Buffer }> {
  return new Map(
    h.tensors.map((t) => [
      t.name,
      { dims: t.dims, type: t.type, data: Buffer.from(bytes.subarray(t.fileOffset, t.fileOffset + t.size)) },
    ]),
  );
}

/** Converts `files` in this process; the output's bytes. */
export function convertFiles(dir: string, files: Map<string, Uint8Array>): Uint8Array {
  const output = join(mkdtempSync(join(dir, "out-")), "model.gguf");
  const { size } = convertCheckpoint({ files: writeFiles(dir, files), output });
  const out = readFileSync(output);
  expect(out.length).toBe(size);
  return out;
}

/** Same tensor names, dims, types and bytes; `keys` (and every `<arch>.*` key of the reference) equal. */
export async function expectSameGguf(out: Uint8Array, reference: Uint8Array, keys: readonly string[]): Promise<void> {
  const got = await header(out);
  const want = await header(reference);
  const gotTensors = tensorBytes(out, got);
  const wantTensors = tensorBytes(reference, want);
  expect([...gotTensors.keys()].sort()).toEqual([...wantTensors.keys()].sort());
  for (const [name, w] of wantTensors) {
    const g = gotTensors.get(name)!;
    expect({ name, dims: g.dims, type: g.type }).toEqual({ name, dims: w.dims, type: w.type });
    expect(Buffer.compare(g.data, w.data), name).toBe(0);
  }
  const arch = `${want.metadata["general.architecture"]}.`;
  for (const key of [...keys, ...Object.keys(want.metadata).filter((k) => k.startsWith(arch))]) {
    expect(got.metadata[key], key).toEqual(want.metadata[key]);
  }
}

/** llama.cpp's first 12 greedy tokens after "the quick brown", as text; with `adapterPath`, through that LoRA. */
export async function greedyText(dir: string, bytes: Uint8Array, name: string, adapterPath?: string): Promise<string> {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  const model = await (await testLlama()).loadModel({ modelPath: path, gpuLayers: 0 });
  try {
    const context = await model.createContext({
      contextSize: 256,
      threads: 1,
      sequences: 1,
      lora: adapterPath ? { adapters: [{ filePath: adapterPath }] } : undefined,
    });
    try {
      const tokens: Token[] = [];
      for await (const token of context.getSequence().evaluate(model.tokenize("the quick brown"), { temperature: 0 })) {
        tokens.push(token);
        if (tokens.length >= 12) break;
      }
      return model.detokenize(tokens);
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}
