/**
 * Converts a Hugging Face checkpoint (files on disk, named as the client named them) into one GGUF file, streaming:
 * the header is computed from the safetensors headers alone, then each tensor is read, permuted and converted and
 * written before the next is read, so memory stays at about one tensor whatever the checkpoint's size. Synchronous
 * file I/O: this runs in the convert child process (engine.ts), never on the runner's event loop.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import {
  architectureMetadata,
  type CheckpointPlan,
  generatedTensors,
  permutedHeads,
  planCheckpoint,
  readsSentencePiece,
  valueOffset,
} from "@corral/protocol/checkpoint";
import { bertPooling } from "@corral/protocol/checkpoint-bert";
import { ApiError } from "@corral/protocol/errors";
import { GgmlType } from "@corral/protocol/gguf/types";
import { GGUF_DEFAULT_ALIGNMENT, GgufByteWriter, type GgufMetadataEntry, kv } from "@corral/protocol/gguf/writer";
import { parseSafetensorsHeader, type SafetensorsHeader, safetensorsHeaderLength } from "@corral/protocol/safetensors";
import { MAX_TOKENIZER_MODEL_BYTES } from "@corral/protocol/sentencepiece";
import { addToValues, convertTensorData, outputType, permuteRows, Scratch } from "./tensor-data";
import { tokenizerMetadata } from "./tokenizer";
import { sentencePieceMetadata } from "./tokenizer-sentencepiece";

/** JSON files beside the weights are read whole: anything over this is not a real config or tokenizer. */
const MAX_JSON_BYTES = 64 * 1024 * 1024;
/** llama.cpp's file types: all matrices F16, or all BF16. */
const FILE_TYPE_F16 = 1;
const FILE_TYPE_BF16 = 32;

export interface ConvertInput {
  /** The checkpoint's files: name as uploaded → path (a blob in the runner's cache). */
  files: ReadonlyMap<string, string>;
  /** Where to write the GGUF (a new file). */
  output: string;
  /** Tensors written / tensor count. */
  onProgress?(done: number, total: number): void;
}

export interface OutputTensor {
  name: string;
  dims: number[];
  type: GgmlType;
  bytes: number;
  /** Produces the converted bytes; called once, when the tensor is written. */
  data(): Uint8Array;
}

export function convertCheckpoint(input: ConvertInput): { size: number } {
  const plan = readPlan(input.files);
  const tensors = outputTensors(plan, input.files);
  const matrices = tensors.filter((t) => t.dims.length > 1);
  const fileType = matrices.every((t) => t.type === GgmlType.BF16) ? FILE_TYPE_BF16 : FILE_TYPE_F16;
  const metadata = [
    ...architectureMetadata(
      plan.config,
      plan.vocabRows,
      bertPooling({ read: (name) => readText(input.files, name, false) }),
    ),
    kv.u32("general.file_type", fileType),
    kv.u32("general.quantization_version", 2),
    ...tokenizerEntries(plan, input.files),
  ];
  return writeGgufFile(input.output, metadata, tensors, input.onProgress);
}

/** Writes a GGUF a tensor at a time: the header from the tensors' planned sizes, then each tensor's bytes, padded. */
export function writeGgufFile(
  output: string,
  metadata: readonly GgufMetadataEntry[],
  tensors: readonly OutputTensor[],
  onProgress?: (done: number, total: number) => void,
): { size: number } {
  const header = new GgufByteWriter().magic().u32(3).u64(tensors.length).u64(metadata.length);
  for (const entry of metadata) header.kv(entry);
  let offset = 0;
  for (const t of tensors) {
    header.tensorInfo({ name: t.name, dims: t.dims, type: t.type, offset });
    offset += align(t.bytes);
  }
  header.padTo(GGUF_DEFAULT_ALIGNMENT);

  const fd = openSync(output, "wx");
  try {
    let size = writeAll(fd, header.finish());
    onProgress?.(0, tensors.length);
    tensors.forEach((t, i) => {
      const data = t.data();
      if (data.length !== t.bytes) throw new Error(`${t.name}: ${data.length} bytes converted, ${t.bytes} planned`);
      size += writeAll(fd, data);
      size += writeAll(fd, new Uint8Array(align(data.length) - data.length));
      onProgress?.(i + 1, tensors.length);
    });
    return { size };
  } finally {
    closeSync(fd);
  }
}

/** The tokenizer's keys: from a SentencePiece tokenizer.model where the architecture's converter reads one. */
function tokenizerEntries(plan: CheckpointPlan, files: ReadonlyMap<string, string>) {
  const c = plan.config;
  const tokenizerConfig = readText(files, "tokenizer_config.json", false);
  if (readsSentencePiece(c.arch, files.has("tokenizer.model"), files.has("tokenizer.json"))) {
    const sentencePiece = {
      model: readBytes(files, "tokenizer.model", true, MAX_TOKENIZER_MODEL_BYTES)!,
      config: readText(files, "config.json", true)!,
      tokenizer: readText(files, "tokenizer.json", false),
      tokenizerConfig,
      addedTokens: readText(files, "added_tokens.json", false),
    };
    const flavour = c.arch === "phi3" ? "phi3" : c.arch === "gemma2" || c.arch === "gemma3" ? "gemma" : "generic";
    return sentencePieceMetadata(sentencePiece, plan.vocabRows, flavour);
  }
  const tokenizer = { tokenizer: readText(files, "tokenizer.json", true)!, tokenizerConfig };
  const generationConfig = readText(files, "generation_config.json", false);
  return tokenizerMetadata({ ...tokenizer, generationConfig }, plan.vocabRows, c.typeVocab);
}

/** config.json, the index and every shard's header, checked (protocol/checkpoint.ts). */
function readPlan(files: ReadonlyMap<string, string>): CheckpointPlan {
  const headers = new Map<string, SafetensorsHeader>();
  for (const [name, path] of files) if (name.endsWith(".safetensors")) headers.set(name, readHeader(name, path));
  if (headers.size === 0) throw new ApiError(400, "no .safetensors files to convert");
  return planCheckpoint(
    readText(files, "config.json", true)!,
    readText(files, "model.safetensors.index.json", false),
    headers,
  );
}

export function readHeader(name: string, path: string): SafetensorsHeader {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const prefix = new Uint8Array(8);
    readSync(fd, prefix, 0, 8, 0);
    const length = safetensorsHeaderLength(prefix, size, name);
    return parseSafetensorsHeader(readAt(fd, 8, length), size, name);
  } finally {
    closeSync(fd);
  }
}

function outputTensors(plan: CheckpointPlan, files: ReadonlyMap<string, string>): OutputTensor[] {
  const out: OutputTensor[] = [];
  const scratch = new Scratch();
  for (const { name, values } of generatedTensors(plan.config)) {
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    out.push({ name, dims: [values.length], type: GgmlType.F32, bytes: bytes.length, data: () => bytes });
  }
  for (const t of plan.tensors) {
    const type = outputType(t.name, t.dtype, t.shape.length);
    const elements = t.shape.reduce((a, b) => a * b, 1);
    const heads = permutedHeads(plan.config, t.name);
    const offset = valueOffset(plan.config, t.name);
    out.push({
      name: t.name,
      // ggml order: the contiguous dimension first.
      dims: [...t.shape].reverse(),
      type,
      bytes: elements * (type === GgmlType.F32 ? 4 : 2),
      data: () => {
        const fd = openSync(files.get(t.file)!, "r");
        let raw: Uint8Array;
        try {
          raw = readAt(fd, t.start, t.end - t.start, scratch.take(0, t.end - t.start));
        } finally {
          closeSync(fd);
        }
        if (heads !== null) raw = permuteRows(raw, t.shape[0]!, heads, scratch);
        const converted = convertTensorData(raw, t.dtype, type, scratch);
        return offset === 0 ? converted : addToValues(converted, type, offset);
      },
    });
  }
  return out;
}

export function readText(files: ReadonlyMap<string, string>, name: string, required: boolean): string | undefined {
  const bytes = readBytes(files, name, required, MAX_JSON_BYTES);
  return bytes && new TextDecoder().decode(bytes);
}

function readBytes(
  files: ReadonlyMap<string, string>,
  name: string,
  required: boolean,
  max: number,
): Uint8Array | undefined {
  const path = files.get(name);
  if (path === undefined) {
    if (required) throw new ApiError(400, `${name} is required to convert a safetensors model`);
    return undefined;
  }
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    if (size > max) throw new ApiError(400, `${name} is ${size} bytes, over the limit of ${max}`);
    return readAt(fd, 0, size);
  } finally {
    closeSync(fd);
  }
}

/** `length` bytes at `position`, into `buffer` (fresh by default; aligned either way); a short file is a 400. */
export function readAt(
  fd: number,
  position: number,
  length: number,
  buffer: Uint8Array = new Uint8Array(length),
): Uint8Array {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, position + done);
    if (n === 0) throw new ApiError(400, "a checkpoint file ended before its data");
    done += n;
  }
  return buffer;
}

function writeAll(fd: number, data: Uint8Array): number {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done);
  return data.length;
}

function align(n: number): number {
  return Math.ceil(n / GGUF_DEFAULT_ALIGNMENT) * GGUF_DEFAULT_ALIGNMENT;
}
