import type { GgufEntry, GgufHeader, GgufValue } from "./reader";
import { fileTypeName, GgmlType, GgufValueType, ggmlTypeName } from "./types";

/** What Ollama shows as a model's `details` (plus the two lengths the edge needs for scheduling and `show`). */
export interface ModelDescription {
  format: "gguf";
  family: string;
  families: string[];
  parameter_size: string;
  quantization_level: string;
  context_length?: number;
  embedding_length?: number;
}

export interface TensorDescription {
  name: string;
  type: string;
  shape: number[];
}

/** Total element count of all tensors: what Ollama patches into `general.parameter_count`. */
export function parameterCount(header: GgufHeader): bigint {
  let total = 0n;
  for (const t of header.tensors) total += t.dims.reduce((n, d) => n * BigInt(d), 1n);
  return total;
}

/** A number from metadata (any integer or float type), or undefined when absent or not numeric. */
export function metadataNumber(header: GgufHeader, key: string): number | undefined {
  const value = header.metadata[key];
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  return undefined;
}

function metadataString(header: GgufHeader, key: string): string | undefined {
  const value = header.metadata[key];
  return typeof value === "string" ? value : undefined;
}

export function describeModel(header: GgufHeader): ModelDescription {
  const family = metadataString(header, "general.architecture") ?? "unknown";
  const fileType = metadataNumber(header, "general.file_type");
  const description: ModelDescription = {
    format: "gguf",
    family,
    families: [family],
    parameter_size: humanNumber(parameterCount(header)),
    quantization_level: fileType === undefined ? dominantTensorType(header) : fileTypeName(fileType),
  };
  const contextLength = metadataNumber(header, `${family}.context_length`);
  const embeddingLength = metadataNumber(header, `${family}.embedding_length`);
  if (contextLength !== undefined) description.context_length = contextLength;
  if (embeddingLength !== undefined) description.embedding_length = embeddingLength;
  return description;
}

/**
 * The width of the embeddings a vision projector (llama.cpp's `clip` GGUF) hands the text model, which must equal
 * the text model's embedding_length. As llama.cpp measures it for the LLaVA-style projectors: the output of the
 * last numbered `mm.N` tensor (a bias or norm's length, a matrix's second dimension); for the others, the
 * converter's `clip.vision.projection_dim`. Undefined when the file says neither.
 */
export function projectorOutputWidth(header: GgufHeader): number | undefined {
  let last: { index: number; width: number; bias: boolean } | undefined;
  for (const t of header.tensors) {
    const match = /^mm\.(\d+)\.(weight|bias)$/.exec(t.name);
    if (!match) continue;
    const index = Number(match[1]);
    const width = t.dims.length === 1 ? t.dims[0] : t.dims[1];
    const bias = match[2] === "bias";
    if (width === undefined) continue;
    if (!last || index > last.index || (index === last.index && bias)) last = { index, width, bias };
  }
  return last?.width ?? metadataNumber(header, "clip.vision.projection_dim");
}

/** Without general.file_type, the tensor type holding the most elements stands for the file's quantization. */
function dominantTensorType(header: GgufHeader): string {
  const elementsByType = new Map<number, bigint>();
  for (const t of header.tensors) {
    const n = t.dims.reduce((acc, d) => acc * BigInt(d), 1n);
    elementsByType.set(t.type, (elementsByType.get(t.type) ?? 0n) + n);
  }
  let best: number | undefined;
  let bestCount = -1n;
  for (const [type, count] of elementsByType) {
    if (count > bestCount) [best, bestCount] = [type, count];
  }
  return best === undefined ? "unknown" : ggmlTypeName(best);
}

/**
 * Ollama's `model_info` for `/api/show`: every metadata key (sorted, as Go encodes maps) except general.name and
 * tokenizer.chat_template, with general.parameter_count set to the tensors' element count. Without `verbose`,
 * Ollama decodes no array elements, so every non-empty array reads `null` and an empty one `[]`.
 * 64-bit integers become JSON numbers (exact up to 2^53); float32 values take their shortest float32 spelling,
 * so 1e-5 reads 0.00001 as in Go rather than 0.000009999999747378752.
 */
export function modelInfo(header: GgufHeader, verbose: boolean): Record<string, unknown> {
  const pairs: [string, unknown][] = [];
  for (const entry of header.entries) {
    if (entry.key === "general.name" || entry.key === "tokenizer.chat_template") continue;
    if (entry.key === "general.parameter_count") continue;
    pairs.push([entry.key, jsonValue(entry, verbose)]);
  }
  pairs.push(["general.parameter_count", Number(parameterCount(header))]);
  pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(pairs);
}

function jsonValue(entry: GgufEntry, verbose: boolean): unknown {
  if (entry.type !== GgufValueType.ARRAY) return jsonScalar(entry.value as GgufValue, entry.type);
  const values = entry.value as unknown[];
  if (!verbose) return values.length === 0 ? [] : null;
  return jsonArray(values, entry.arrayType ?? GgufValueType.UINT8);
}

function jsonArray(values: readonly unknown[], itemType: GgufValueType): unknown[] {
  if (itemType !== GgufValueType.ARRAY) return values.map((v) => jsonScalar(v as GgufValue, itemType));
  return values.map((item) => {
    const nested = item as { arrayType: GgufValueType; values: unknown[] };
    return jsonArray(nested.values, nested.arrayType);
  });
}

function jsonScalar(value: GgufValue, type: GgufValueType): unknown {
  if (typeof value === "bigint") return Number(value);
  if (type === GgufValueType.FLOAT32 && typeof value === "number") return shortestFloat32(value);
  return value;
}

/** The shortest decimal that reads back as the same float32, as Go's strconv.FormatFloat(v, 'g', -1, 32). */
export function shortestFloat32(value: number): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const target = Math.fround(value);
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === target) return candidate;
  }
  return value;
}

/** Tensor listing for verbose `/api/show`, with Ollama's tensor type names. */
export function tensorsInfo(header: GgufHeader): TensorDescription[] {
  return header.tensors.map((t) => ({ name: t.name, type: ollamaTensorTypeName(t.type), shape: [...t.dims] }));
}

/** Ollama (fs/ggml TensorType.String) names only the types its engine supports; the rest read "unknown". */
const OLLAMA_TENSOR_TYPE_NAMES: ReadonlySet<number> = new Set([
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.Q4_0,
  GgmlType.Q4_1,
  GgmlType.Q5_0,
  GgmlType.Q5_1,
  GgmlType.Q8_0,
  GgmlType.Q8_1,
  GgmlType.Q2_K,
  GgmlType.Q3_K,
  GgmlType.Q4_K,
  GgmlType.Q5_K,
  GgmlType.Q6_K,
  GgmlType.Q8_K,
  GgmlType.F64,
  GgmlType.BF16,
  GgmlType.MXFP4,
]);

export function ollamaTensorTypeName(type: number): string {
  return OLLAMA_TENSOR_TYPE_NAMES.has(type) ? ggmlTypeName(type) : "unknown";
}

/**
 * Ollama's format.HumanNumber: "136.73M", "8.0B", "512K", "999". Go's %.Nf rounds the exact binary value
 * half-to-even, where JS toFixed rounds exact ties up, so the rounding is done here on the exact value.
 */
export function humanNumber(count: number | bigint): string {
  const b = BigInt(count);
  const scaled = (unit: number, suffix: string, decimals: number): string => {
    const x = Number(b) / unit;
    return `${formatFixedGo(x, x === Math.floor(x) ? 0 : decimals)}${suffix}`;
  };
  if (b >= 1_000_000_000n) return scaled(1e9, "B", 1);
  if (b >= 1_000_000n) return scaled(1e6, "M", 2);
  if (b >= 1_000n) return `${formatFixedGo(Number(b) / 1e3, 0)}K`;
  return b.toString();
}

/** `x` (finite, ≥ 0) with `decimals` digits after the point, rounding the exact binary value half to even. */
export function formatFixedGo(x: number, decimals: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const biasedExp = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & ((1n << 52n) - 1n);
  let exp = -1074;
  if (biasedExp !== 0) {
    mantissa |= 1n << 52n;
    exp = biasedExp - 1075;
  }
  // x = mantissa * 2^exp exactly; scale by 10^decimals and round num/den to an integer.
  let num = mantissa * 10n ** BigInt(decimals);
  let den = 1n;
  if (exp >= 0) num <<= BigInt(exp);
  else den <<= BigInt(-exp);
  let q = num / den;
  const twiceRemainder = 2n * (num % den);
  if (twiceRemainder > den || (twiceRemainder === den && q % 2n === 1n)) q += 1n;
  const digits = q.toString().padStart(decimals + 1, "0");
  return decimals === 0 ? digits : `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
}
