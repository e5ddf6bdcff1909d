/**
 * GGUF headers of blobs in the bucket, read with ranged GETs through protocol's validating reader. The parts
 * create, tags and show need are summarised once per digest and cached in D1 (blobs.gguf): a digest names
 * immutable bytes, so the summary never goes stale. Only verbose `/api/show` reads the header again.
 */
import {
  describeModel,
  type GgufHeader,
  type GgufLimits,
  metadataNumber,
  modelInfo,
  projectorOutputWidth,
  readGgufHeader,
  tensorsInfo,
} from "@corral/protocol";
import type { Env } from "../env";
import { MediaType } from "./manifest";
import { blobKey, r2ByteSource } from "./store";

/** A Worker has 128 MB of memory: headers beyond this (arrays are materialised) are refused. */
export const EDGE_GGUF_LIMITS: Partial<GgufLimits> = {
  maxHeaderBytes: 48 * 1024 * 1024,
  maxStringBytes: 4 * 1024 * 1024,
  maxArrayLength: 4 * 1024 * 1024,
};

export interface GgufSummary {
  /** The manifest media type this file gets (general.type adapter/projector, else model). */
  mediaType: string;
  format: "gguf";
  family: string;
  parameter_size: string;
  quantization_level: string;
  context_length?: number;
  embedding_length?: number;
  /** Non-verbose model_info: arrays shortened, as Ollama shows them. */
  model_info: Record<string, unknown>;
  chat_template?: string;
  /** `<arch>.pooling_type` present: an embedding model. */
  pooling: boolean;
  vision: boolean;
  /** A projector's output width, which must be the text model's embedding_length (absent when not said). */
  projector_width?: number;
}

export async function readHeader(env: Env, digest: string, size: number): Promise<GgufHeader> {
  return readGgufHeader(r2ByteSource(env.BLOBS, blobKey(digest), size), EDGE_GGUF_LIMITS);
}

function mediaTypeOf(header: GgufHeader, family: string): string {
  const kind = header.metadata["general.type"];
  if (kind === "adapter") return MediaType.adapter;
  if (kind === "projector" || kind === "mmproj") return MediaType.projector;
  // llama.cpp's mmproj files (CLIP-style encoders) declare the `clip` architecture, as Ollama tells them apart.
  if (family === "clip") return MediaType.projector;
  const blocks = metadataNumber(header, `${family}.block_count`) ?? 0;
  if (blocks === 0 && (metadataNumber(header, `${family}.vision.block_count`) ?? 0) > 0) return MediaType.projector;
  return MediaType.model;
}

export function summarise(header: GgufHeader): GgufSummary {
  const details = describeModel(header);
  const template = header.metadata["tokenizer.chat_template"];
  const summary: GgufSummary = {
    mediaType: mediaTypeOf(header, details.family),
    format: "gguf",
    family: details.family,
    parameter_size: details.parameter_size,
    quantization_level: details.quantization_level,
    model_info: modelInfo(header, false),
    pooling: `${details.family}.pooling_type` in header.metadata,
    vision: `${details.family}.vision.block_count` in header.metadata,
  };
  if (details.context_length !== undefined) summary.context_length = details.context_length;
  if (details.embedding_length !== undefined) summary.embedding_length = details.embedding_length;
  if (typeof template === "string" && template !== "") summary.chat_template = template;
  if (summary.mediaType === MediaType.projector) {
    const width = projectorOutputWidth(header);
    if (width !== undefined) summary.projector_width = width;
  }
  return summary;
}

/** What the edge plans a load with: trained context and the KV cache's dimensions (absent when the GGUF lacks them). */
export interface ModelShape {
  context_length?: number;
  layers?: number;
  kv_heads?: number;
  /** Key plus value width of one KV head, in elements. */
  kv_head_width?: number;
  embedding?: number;
}

/** The shape from a summary's model_info (`<arch>.block_count`, `.attention.head_count_kv`, ... as GGUF names them). */
export function modelShape(summary: GgufSummary): ModelShape {
  const info = summary.model_info;
  const whole = (key: string) => {
    const value = info[`${summary.family}.${key}`];
    return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? value : undefined;
  };
  const heads = whole("attention.head_count");
  const embedding = whole("embedding_length");
  const headDim = heads && embedding ? embedding / heads : undefined;
  const keyWidth = whole("attention.key_length") ?? headDim;
  const valueWidth = whole("attention.value_length") ?? headDim;
  return {
    context_length: summary.context_length,
    layers: whole("block_count"),
    kv_heads: whole("attention.head_count_kv") ?? heads,
    kv_head_width: keyWidth && valueWidth ? keyWidth + valueWidth : undefined,
    embedding,
  };
}

/** The cached summary of a blob, if create has parsed it before. */
export function cachedSummary(gguf: string | null): GgufSummary | null {
  if (!gguf) return null;
  try {
    return JSON.parse(gguf) as GgufSummary;
  } catch {
    return null;
  }
}

/** Verbose `/api/show`: every array in full, and the tensor list. */
export async function verboseInfo(env: Env, digest: string, size: number) {
  const header = await readHeader(env, digest, size);
  return { model_info: modelInfo(header, true), tensors: tensorsInfo(header) };
}
