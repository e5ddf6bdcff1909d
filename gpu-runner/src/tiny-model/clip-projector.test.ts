import { describe, expect, it } from "vitest";
import { readGgufHeader } from "../../../protocol/src/gguf/reader";
import { bytesSource } from "../../../protocol/src/gguf/source";
import { TINY_VISION, writeTinyProjector } from "./clip-projector";
import { TINY_MODEL_HYPERPARAMETERS } from "./llama-gguf";

describe("writeTinyProjector", () => {
  it("is a clip GGUF with llama.cpp's keys and an mlp projector into the tiny model's embedding", async () => {
    const header = await readGgufHeader(bytesSource(writeTinyProjector()));
    expect(header.metadata["general.architecture"]).toBe("clip");
    expect(header.metadata["clip.projector_type"]).toBe("mlp");
    expect(header.metadata["clip.has_vision_encoder"]).toBe(true);
    expect(header.metadata["clip.vision.image_size"]).toBe(TINY_VISION.imageSize);
    const tensors = new Map(header.tensors.map((t) => [t.name, t.dims.map(Number)]));
    expect(tensors.get("v.patch_embd.weight")).toEqual([8, 8, 3, TINY_VISION.embedding]);
    expect(tensors.get("mm.2.weight")).toEqual([
      TINY_MODEL_HYPERPARAMETERS.embedding,
      TINY_MODEL_HYPERPARAMETERS.embedding,
    ]);
    expect(tensors.has(`v.blk.${TINY_VISION.layers - 1}.ffn_down.weight`)).toBe(true);
  });

  it("is byte-identical for a seed and differs between seeds", () => {
    expect(Buffer.from(writeTinyProjector({ seed: 3 })).equals(Buffer.from(writeTinyProjector({ seed: 3 })))).toBe(
      true,
    );
    expect(Buffer.from(writeTinyProjector({ seed: 3 })).equals(Buffer.from(writeTinyProjector({ seed: 4 })))).toBe(
      false,
    );
  });
});
