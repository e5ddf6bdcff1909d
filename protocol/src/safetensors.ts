/**
 * The safetensors header (huggingface/safetensors format): 8 bytes little-endian header length N, N bytes of JSON
 * mapping tensor names to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the byte after the
 * header), an optional `__metadata__` object of strings, then the data. Read by the edge (validating an upload before
 * a runner spends time on it) and by the runner's converter; both see untrusted bytes, so every field is checked.
 */
import { ApiError } from "./errors";

/** Headers over this are refused: real checkpoints have ~100 KB per shard; the edge holds the JSON in memory. */
export const SAFETENSORS_MAX_HEADER_BYTES = 16 * 1024 * 1024;
/** Tensors per file, and dimensions per tensor, beyond any real checkpoint. */
const MAX_TENSORS = 100_000;
const MAX_DIMS = 8;
const MAX_NAME_CHARS = 512;

/** Bytes per element of every dtype the format defines. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};
export const CONVERTIBLE_DTYPES = new Set(["F32", "F16", "BF16"]);

export interface SafetensorsTensor {
  name: string;
  /** Any dtype of the format; only CONVERTIBLE_DTYPES are converted (others, e.g. BERT's I64 position_ids, skipped). */
  dtype: string;
  shape: number[];
  /** Absolute offsets in the file (header included). */
  start: number;
  end: number;
}

export interface SafetensorsHeader {
  /** The header's length field: data starts at 8 + headerLength. */
  headerLength: number;
  tensors: SafetensorsTensor[];
}

/** The header length of a file whose first 8 bytes are `prefix`, checked against the file size and the cap. */
export function safetensorsHeaderLength(prefix: Uint8Array, fileSize: number, file: string): number {
  if (prefix.length < 8 || fileSize < 8) throw invalid(file, "shorter than its 8-byte header length");
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(fileSize - 8)) throw invalid(file, `header length ${length} is past the end of the file`);
  if (length > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    throw invalid(file, `header length ${length} is over the limit of ${SAFETENSORS_MAX_HEADER_BYTES} bytes`);
  }
  if (length < 2n) throw invalid(file, "header is empty");
  return Number(length);
}

/**
 * Parses and checks a header (`json` = the N bytes after the length): a JSON object; each tensor with a known,
 * convertible dtype, a shape of non-negative integers, offsets inside the data section, not overlapping, and
 * `end - begin = product(shape) × dtype size`.
 */
export function parseSafetensorsHeader(json: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const headerLength = json.length;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(json));
  } catch {
    throw invalid(file, "header is not valid JSON");
  }
  if (!isObject(parsed)) throw invalid(file, "header is not a JSON object");
  const entries = Object.entries(parsed).filter(([name]) => name !== "__metadata__");
  if (entries.length > MAX_TENSORS) throw invalid(file, `more than ${MAX_TENSORS} tensors`);
  const dataSize = fileSize - 8 - headerLength;
  const tensors = entries.map(([name, value]) => checkTensor(name, value, dataSize, file, 8 + headerLength));
  const byStart = [...tensors].sort((a, b) => a.start - b.start || a.end - b.end);
  for (let i = 1; i < byStart.length; i++) {
    const previous = byStart[i - 1]!;
    const current = byStart[i]!;
    if (current.start < previous.end) {
      throw invalid(file, `tensors ${previous.name} and ${current.name} overlap`);
    }
  }
  return { headerLength, tensors };
}

function checkTensor(name: string, value: unknown, dataSize: number, file: string, base: number): SafetensorsTensor {
  if (name.length === 0 || name.length > MAX_NAME_CHARS) throw invalid(file, "a tensor name is empty or too long");
  if (!isObject(value)) throw invalid(file, `tensor ${name} is not an object`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== "string" || !Object.hasOwn(SAFETENSORS_DTYPE_BYTES, dtype)) {
    throw invalid(file, `tensor ${name} has unknown dtype ${JSON.stringify(dtype)}`);
  }
  if (!Array.isArray(shape) || shape.length > MAX_DIMS || !shape.every(isSize)) {
    throw invalid(file, `tensor ${name} has an invalid shape`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isSize)) {
    throw invalid(file, `tensor ${name} has invalid data_offsets`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataSize) throw invalid(file, `tensor ${name} data_offsets are out of bounds`);
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  if (elements * SAFETENSORS_DTYPE_BYTES[dtype]! !== end - begin) {
    throw invalid(file, `tensor ${name} data_offsets do not match its shape and dtype`);
  }
  return {
    name,
    dtype: dtype as SafetensorsTensor["dtype"],
    shape: shape as number[],
    start: base + begin,
    end: base + end,
  };
}

function isSize(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function invalid(file: string, reason: string): ApiError {
  return new ApiError(400, `invalid safetensors file ${file}: ${reason}`);
}
