/**
 * Converts a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors, on disk under the names the client
 * gave) into a GGUF LoRA adapter for its base model, as llama.cpp's convert_lora_to_gguf.py writes it: the plan
 * (protocol/checkpoint-lora.ts) checks every pair against the base, then each tensor is read, lora_b of llama's Q/K
 * permuted, converted to F32 and written before the next is read. Runs in the convert child (engine.ts).
 */
import { closeSync, openSync } from "node:fs";
import { type AdapterBase, adapterMetadata, planAdapter } from "@corral/protocol/checkpoint-lora";
import { ApiError } from "@corral/protocol/errors";
import { GgmlType } from "@corral/protocol/gguf/types";
import { type OutputTensor, readAt, readHeader, readText, writeGgufFile } from "./convert";
import { convertTensorData, permuteRows, Scratch } from "./tensor-data";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";

export interface ConvertAdapterInput {
  files: ReadonlyMap<string, string>;
  base: AdapterBase;
  output: string;
  onProgress?(done: number, total: number): void;
}

export function convertAdapter(input: ConvertAdapterInput): { size: number } {
  const weights = input.files.get(ADAPTER_WEIGHTS);
  if (weights === undefined) throw new ApiError(400, `${ADAPTER_WEIGHTS} is required to convert an adapter`);
  const plan = planAdapter(
    readText(input.files, ADAPTER_CONFIG, true)!,
    ADAPTER_WEIGHTS,
    readHeader(ADAPTER_WEIGHTS, weights).tensors,
    input.base,
  );
  const scratch = new Scratch();
  const tensors: OutputTensor[] = plan.tensors.map((t) => ({
    name: t.name,
    dims: [...t.shape].reverse(),
    type: GgmlType.F32,
    bytes: t.shape[0]! * t.shape[1]! * 4,
    data: () => {
      const fd = openSync(weights, "r");
      let raw: Uint8Array;
      try {
        raw = readAt(fd, t.start, t.end - t.start, scratch.take(0, t.end - t.start));
      } finally {
        closeSync(fd);
      }
      if (t.permuteHeads !== null) raw = permuteRows(raw, t.shape[0]!, t.permuteHeads, scratch);
      return convertTensorData(raw, t.dtype, GgmlType.F32, scratch);
    },
  }));
  return writeGgufFile(input.output, adapterMetadata(plan), tensors, input.onProgress);
}
