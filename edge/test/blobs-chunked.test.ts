/**
 * `POST /api/blobs/:digest` with a body of unknown length (no Content-Length), as Ollama's Go CLI and Python client
 * send blobs. Bodies above one part (8 MiB) go through an R2 multipart upload; miniflare enforces R2's part rules
 * (≥ 5 MiB, equal sizes but the last), so a wrong split would fail here as it would in production.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CHUNKED_PART_SIZE } from "../src/store/chunked-upload";
import { ADMIN, call, newTenant } from "./helpers";
import { ggufModel, snapshot, upload } from "./registry-fixtures";

const PART = CHUNKED_PART_SIZE;

function bytesOf(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed || 1;
  for (let i = 0; i < size; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
    out[i + 1] = x >>> 16;
    out[i + 2] = x >>> 8;
    out[i + 3] = x;
  }
  return out;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${[...hash].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** A body without a length, delivered in uneven chunks; `pulled` says how much of it the server asked for. */
function chunked(bytes: Uint8Array, chunkSize = 1024 * 1024 + 7) {
  const state = { pulled: 0 };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state.pulled >= bytes.length) return controller.close();
      const chunk = bytes.slice(state.pulled, state.pulled + chunkSize);
      state.pulled += chunk.length;
      controller.enqueue(chunk);
    },
  });
  return { stream, state };
}

function postChunked(key: string, digest: string, body: ReadableStream<Uint8Array>): Promise<Response> {
  return call("POST", `/api/blobs/${digest}`, { key, raw: body });
}

async function stored(digest: string): Promise<R2ObjectBody | null> {
  return env.BLOBS.get(`blobs/${digest.replace(":", "-")}`);
}

async function pendingRows(): Promise<unknown> {
  const uploads = await env.DB.prepare("SELECT COUNT(*) AS n FROM uploads").first("n");
  const pins = await env.DB.prepare("SELECT COUNT(*) AS n FROM blob_pins").first("n");
  return { uploads, pins };
}

describe("chunked POST /api/blobs/:digest (no Content-Length)", () => {
  it.each([
    ["a small body", 3000],
    ["exactly one part", PART],
  ])("stores %s with a single verified put", async (_label, size) => {
    const { key } = await newTenant(`chunked-small-${size}`);
    const data = bytesOf(size, size);
    const d = await sha256(data);
    const res = await postChunked(key, d, chunked(data, 1000).stream);
    expect(res.status).toBe(201);
    expect((await call("HEAD", `/api/blobs/${d}`, { key })).status).toBe(200);
    const object = await stored(d);
    expect(object!.size).toBe(size);
    // A single put: R2 gives multipart objects an etag with a part-count suffix.
    expect(object!.etag).not.toMatch(/-\d+$/);
    expect(await sha256(new Uint8Array(await object!.arrayBuffer()))).toBe(d);
    expect(await env.DB.prepare("SELECT size FROM blobs WHERE digest = ?").bind(d).first("size")).toBe(size);
    expect(await pendingRows()).toEqual({ uploads: 0, pins: 0 });
    // Sent again: the tenant has it already.
    expect((await postChunked(key, d, chunked(data).stream)).status).toBe(200);
  });

  it("streams a body bigger than one part into a multipart upload, completed only once verified", async () => {
    const { key } = await newTenant("chunked-multi");
    const data = bytesOf(PART + 1000, 9);
    const d = await sha256(data);
    const res = await postChunked(key, d, chunked(data).stream);
    expect(res.status).toBe(201);
    const object = await stored(d);
    expect(object!.size).toBe(data.length);
    expect(object!.etag).toMatch(/-2$/);
    expect(await sha256(new Uint8Array(await object!.arrayBuffer()))).toBe(d);
    expect((await call("HEAD", `/api/blobs/${d}`, { key })).status).toBe(200);
    expect(await pendingRows()).toEqual({ uploads: 0, pins: 0 });
  });

  it.each([
    ["in one part", 4000],
    ["over several parts", PART + 10],
  ])("stores nothing when a body %s does not hash to its digest", async (_label, size) => {
    const { key } = await newTenant(`chunked-mismatch-${size}`);
    const before = await snapshot();
    const data = bytesOf(size, 3);
    const wrong = await sha256(bytesOf(size, 4));
    const res = await postChunked(key, wrong, chunked(data).stream);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/^digest mismatch, expected "sha256:/);
    expect(await snapshot()).toBe(before);
    expect(await stored(wrong)).toBeNull();
  });

  it("stops mid-stream with 413 when the bytes so far pass the storage quota, storing nothing", async () => {
    const { id, key } = await newTenant("chunked-quota");
    await call("PUT", `/admin/tenants/${id}/quotas`, { key: ADMIN, body: { storage_bytes: PART + PART / 2 } });
    const data = bytesOf(3 * PART + 5, 5);
    const d = await sha256(data);
    const before = await snapshot();
    const { stream, state } = chunked(data);
    const res = await postChunked(key, d, stream);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toMatch(/^storage quota exceeded/);
    expect(await snapshot()).toBe(before);
    // Refused at the second part: the rest of the body was never read.
    expect(state.pulled).toBeLessThan(data.length);
  });

  it("makes a tenant send the real bytes of a blob another tenant stored, and counts them against its quota", async () => {
    const a = await newTenant("chunked-owner-a");
    const b = await newTenant("chunked-owner-b");
    const c = await newTenant("chunked-owner-c");
    const bytes = ggufModel({ salt: 11 });
    const d = await sha256(bytes);
    expect((await upload(a.key, bytes)).status).toBe(201);
    expect((await postChunked(b.key, d, chunked(new Uint8Array(bytes.length)).stream)).status).toBe(400);
    expect((await call("HEAD", `/api/blobs/${d}`, { key: b.key })).status).toBe(404);
    expect((await postChunked(b.key, d, chunked(bytes, 100).stream)).status).toBe(201);
    expect((await call("HEAD", `/api/blobs/${d}`, { key: b.key })).status).toBe(200);

    await call("PUT", `/admin/tenants/${c.id}/quotas`, { key: ADMIN, body: { storage_bytes: 10 } });
    const before = await snapshot();
    expect((await postChunked(c.key, d, chunked(bytes, 100).stream)).status).toBe(413);
    expect(await snapshot()).toBe(before);
  });

  it("keeps the chunked upload's bookkeeping row out of the multipart API", async () => {
    const { key, id } = await newTenant("chunked-row");
    const d = await sha256(bytesOf(10, 1));
    await env.DB.prepare(
      `INSERT INTO uploads (id, tenant_id, digest, size, r2_upload_id, r2_key, part_size, parts, created_at, expires_at)
       VALUES ('chunked_x', ?, ?, 0, 'r2', 'k', ?, '[]', 0, ?)`,
    )
      .bind(id, d, PART, Date.now() + 60_000)
      .run();
    expect((await call("GET", `/api/blobs/${d}/uploads/chunked_x`, { key })).status).toBe(404);
    await env.DB.prepare("DELETE FROM uploads WHERE id = 'chunked_x'").run();
  });
});
