/** Value types of GGUF metadata (gguf.h `gguf_type`). */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** Tensor element types (ggml.h `ggml_type`). Gaps are types llama.cpp removed; files using them are refused. */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
}

export interface GgmlTypeTraits {
  /** Elements per block; a row's ne0 must be a multiple of it. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
}

/** Block layout per type, as in ggml.c's `type_traits` (sizes of the block_* structs in ggml-common.h). */
const GGML_TYPE_TRAITS: ReadonlyMap<number, GgmlTypeTraits> = new Map<number, GgmlTypeTraits>([
  [GgmlType.F32, { blockSize: 1, typeSize: 4 }],
  [GgmlType.F16, { blockSize: 1, typeSize: 2 }],
  [GgmlType.Q4_0, { blockSize: 32, typeSize: 18 }],
  [GgmlType.Q4_1, { blockSize: 32, typeSize: 20 }],
  [GgmlType.Q5_0, { blockSize: 32, typeSize: 22 }],
  [GgmlType.Q5_1, { blockSize: 32, typeSize: 24 }],
  [GgmlType.Q8_0, { blockSize: 32, typeSize: 34 }],
  [GgmlType.Q8_1, { blockSize: 32, typeSize: 36 }],
  [GgmlType.Q2_K, { blockSize: 256, typeSize: 84 }],
  [GgmlType.Q3_K, { blockSize: 256, typeSize: 110 }],
  [GgmlType.Q4_K, { blockSize: 256, typeSize: 144 }],
  [GgmlType.Q5_K, { blockSize: 256, typeSize: 176 }],
  [GgmlType.Q6_K, { blockSize: 256, typeSize: 210 }],
  [GgmlType.Q8_K, { blockSize: 256, typeSize: 292 }],
  [GgmlType.IQ2_XXS, { blockSize: 256, typeSize: 66 }],
  [GgmlType.IQ2_XS, { blockSize: 256, typeSize: 74 }],
  [GgmlType.IQ3_XXS, { blockSize: 256, typeSize: 98 }],
  [GgmlType.IQ1_S, { blockSize: 256, typeSize: 50 }],
  [GgmlType.IQ4_NL, { blockSize: 32, typeSize: 18 }],
  [GgmlType.IQ3_S, { blockSize: 256, typeSize: 110 }],
  [GgmlType.IQ2_S, { blockSize: 256, typeSize: 82 }],
  [GgmlType.IQ4_XS, { blockSize: 256, typeSize: 136 }],
  [GgmlType.I8, { blockSize: 1, typeSize: 1 }],
  [GgmlType.I16, { blockSize: 1, typeSize: 2 }],
  [GgmlType.I32, { blockSize: 1, typeSize: 4 }],
  [GgmlType.I64, { blockSize: 1, typeSize: 8 }],
  [GgmlType.F64, { blockSize: 1, typeSize: 8 }],
  [GgmlType.IQ1_M, { blockSize: 256, typeSize: 56 }],
  [GgmlType.BF16, { blockSize: 1, typeSize: 2 }],
  [GgmlType.TQ1_0, { blockSize: 256, typeSize: 54 }],
  [GgmlType.TQ2_0, { blockSize: 256, typeSize: 66 }],
  [GgmlType.MXFP4, { blockSize: 32, typeSize: 17 }],
]);

export function ggmlTypeTraits(type: number): GgmlTypeTraits | undefined {
  return GGML_TYPE_TRAITS.get(type);
}

/** Name of a tensor type as Ollama prints it in verbose `/api/show` tensors ("F32", "Q4_K", ...). */
export function ggmlTypeName(type: number): string {
  const name = GgmlType[type];
  return typeof name === "string" ? name : "unknown";
}

/**
 * Bytes a tensor of `dims` (ggml order) occupies, or undefined if the type is unknown, ne0 is not a whole
 * number of blocks, or the size exceeds Number.MAX_SAFE_INTEGER. Computed in BigInt so hostile dims cannot
 * overflow silently.
 */
export function ggmlTensorBytes(type: number, dims: readonly number[]): number | undefined {
  const traits = GGML_TYPE_TRAITS.get(type);
  if (!traits) return undefined;
  let elements = 1n;
  for (const d of dims) elements *= BigInt(d);
  const ne0 = BigInt(dims[0] ?? 1);
  const block = BigInt(traits.blockSize);
  if (ne0 % block !== 0n) return undefined;
  const bytes = (elements / block) * BigInt(traits.typeSize);
  return bytes <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(bytes) : undefined;
}

/**
 * `general.file_type` (llama.cpp's `llama_ftype`) → the name Ollama shows as `quantization_level`. Exactly the
 * set ollama fs/ggml/type.go `FileType.String` names (4, once Q4_1_F16, is Ollama's MXFP4); every other number,
 * the IQ* types included, reads "unknown" there too.
 */
const FILE_TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [0, "F32"],
  [1, "F16"],
  [2, "Q4_0"],
  [3, "Q4_1"],
  [4, "MXFP4"],
  [7, "Q8_0"],
  [8, "Q5_0"],
  [9, "Q5_1"],
  [10, "Q2_K"],
  [11, "Q3_K_S"],
  [12, "Q3_K_M"],
  [13, "Q3_K_L"],
  [14, "Q4_K_S"],
  [15, "Q4_K_M"],
  [16, "Q5_K_S"],
  [17, "Q5_K_M"],
  [18, "Q6_K"],
  [21, "Q2_K_S"],
  [32, "BF16"],
]);

export function fileTypeName(fileType: number): string {
  return FILE_TYPE_NAMES.get(fileType) ?? "unknown";
}
