/** Shared helpers of the registry tests: GGUF fixtures, upload/create shortcuts, and D1+R2 snapshots. */

import { env } from "cloudflare:test";
import { GgmlType, GgufByteWriter, GgufValueType, kv, writeGguf } from "@corral/protocol";
import { digestOf } from "@corral/protocol/digest";
import { expect } from "vitest";
import { call } from "./helpers";

export interface GgufOptions {
  arch?: string;
  type?: string;
  chatTemplate?: string;
  pooling?: boolean;
  fileType?: number;
  /** A projector's `clip.vision.projection_dim`: the embedding width it feeds the text model (8 matches). */
  projectionDim?: number;
  /** Makes otherwise identical fixtures distinct blobs. */
  salt?: number;
}

/** A small valid GGUF: llama metadata and one 8×4 F32 tensor. */
export function ggufModel(o: GgufOptions = {}): Uint8Array {
  const arch = o.arch ?? "llama";
  const metadata = [
    kv.str("general.architecture", arch),
    kv.str("general.name", "fixture"),
    kv.u32("general.file_type", o.fileType ?? 0),
    kv.u32(`${arch}.context_length`, 4096),
    kv.u32(`${arch}.embedding_length`, 8),
    kv.u32(`${arch}.block_count`, 1),
    kv.strArr("tokenizer.ggml.tokens", ["a", "b", "c"]),
    kv.u32("fixture.salt", o.salt ?? 0),
  ];
  if (o.type) metadata.push(kv.str("general.type", o.type));
  if (o.chatTemplate) metadata.push(kv.str("tokenizer.chat_template", o.chatTemplate));
  if (o.pooling) metadata.push(kv.u32(`${arch}.pooling_type`, 1));
  if (o.projectionDim) metadata.push(kv.u32("clip.vision.projection_dim", o.projectionDim));
  const data = new Uint8Array(8 * 4 * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (o.salt ?? 0)) & 0xff;
  return writeGguf({ metadata, tensors: [{ name: "token_embd.weight", dims: [8, 4], type: GgmlType.F32, data }] });
}

/** Hostile or broken GGUFs from the bad-input table. */
export const badGgufs: Record<string, () => Uint8Array> = {
  "4-byte GGUF": () => new TextEncoder().encode("GGUF"),
  "truncated GGUF": () => ggufModel().slice(0, 60),
  "not a GGUF": () => new TextEncoder().encode("this is plain text, not weights at all"),
  "tensor offset past the end": () => {
    const w = new GgufByteWriter().magic().u32(3).u64(1).u64(1);
    w.kv(kv.str("general.architecture", "llama"));
    w.tensorInfo({ name: "t", dims: [8, 4], type: GgmlType.F32, offset: 1_000_000 });
    return w.padTo(32).bytes(new Uint8Array(128)).finish();
  },
  "huge string length": () => {
    const w = new GgufByteWriter().magic().u32(3).u64(0).u64(1);
    return w.u64(0xffff_ffff_ffffn).bytes(new Uint8Array(64)).finish();
  },
  "huge array count": () => {
    const w = new GgufByteWriter().magic().u32(3).u64(0).u64(1);
    w.str("tokenizer.ggml.tokens").u32(GgufValueType.ARRAY).u32(GgufValueType.STRING).u64(0x7fff_ffff_ffffn);
    return w.bytes(new Uint8Array(64)).finish();
  },
  "alignment 0": () => {
    const w = new GgufByteWriter().magic().u32(3).u64(0).u64(2);
    w.kv(kv.str("general.architecture", "llama"));
    w.kv(kv.u32("general.alignment", 0));
    return w.bytes(new Uint8Array(64)).finish();
  },
  "huge key/tensor counts": () =>
    new GgufByteWriter()
      .magic()
      .u32(3)
      .u64(1n << 60n)
      .u64(1n << 60n)
      .finish(),
};

export const digest = (bytes: Uint8Array) => digestOf(bytes);

export async function upload(key: string, bytes: Uint8Array, as = digest(bytes)): Promise<Response> {
  return call("POST", `/api/blobs/${as}`, {
    key,
    raw: bytes,
    headers: { "content-length": String(bytes.length) },
  });
}

/** Uploads a GGUF and creates a model from it (new form, stream:false); returns the response body. */
export async function createFromGguf(
  key: string,
  model: string,
  bytes: Uint8Array,
  extra: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const up = await upload(key, bytes);
  expect([200, 201]).toContain(up.status);
  const res = await call("POST", "/api/create", {
    key,
    body: { model, files: { "model.gguf": digest(bytes) }, stream: false, ...extra },
  });
  const body = (await res.json()) as Record<string, unknown>;
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body;
}

export async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

const TABLES = ["models", "model_layers", "blobs", "blob_owners", "uploads", "blob_pins"];

/** Everything a request could change: row contents of every registry table and the bucket's keys. */
export async function snapshot(): Promise<string> {
  const parts: string[] = [];
  for (const table of TABLES) {
    const { results } = await env.DB.prepare(`SELECT * FROM ${table} ORDER BY 1, 2`).all();
    parts.push(`${table}: ${JSON.stringify(results)}`);
  }
  const listed = await env.BLOBS.list();
  parts.push(`r2: ${listed.objects.map((o) => `${o.key}:${o.size}`).join(",")}`);
  return parts.join("\n");
}

export async function r2Keys(): Promise<string[]> {
  return (await env.BLOBS.list()).objects.map((o) => o.key);
}

/** Reads an NDJSON response into its lines. */
export async function ndjsonLines(res: Response): Promise<Record<string, unknown>[]> {
  const text = await res.text();
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
