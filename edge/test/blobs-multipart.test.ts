import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ResumableSha256 } from "../src/store/resumable-sha256";
import { call, newTenant } from "./helpers";
import { digest, json, snapshot } from "./registry-fixtures";

const MiB = 1024 * 1024;
const PART = 5 * MiB;

function bytesOf(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed || 1;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

interface Status {
  upload_id: string;
  part_size: number;
  part_count: number;
  parts_done: number[];
  next_part: number | null;
}

const base = (d: string) => `/api/blobs/${d}/uploads`;

async function start(key: string, d: string, size: number, partSize = PART): Promise<Status> {
  const res = await call("POST", base(d), { key, body: { size, part_size: partSize } });
  expect(res.status).toBe(201);
  return json<Status>(res);
}

function putPart(key: string, d: string, id: string, n: number, bytes: Uint8Array) {
  return call("PUT", `${base(d)}/${id}/parts/${n}`, {
    key,
    raw: bytes,
    headers: { "content-length": String(bytes.length) },
  });
}

describe("resumable SHA-256", () => {
  it.each([0, 64, 640, 5 * 64 + 1])("matches the one-shot hash when resumed at block boundaries (%i bytes)", (n) => {
    const data = bytesOf(n + 1000, 3);
    const first = new ResumableSha256().update(data.subarray(0, n - (n % 64)));
    const resumed = ResumableSha256.fromState(first.exportState())!;
    resumed.update(data.subarray(n - (n % 64)));
    expect(`sha256:${resumed.hexDigest()}`).toBe(digest(data));
  });

  it("refuses malformed states", () => {
    expect(ResumableSha256.fromState("nonsense")).toBeNull();
    expect(ResumableSha256.fromState(`${"0".repeat(64)}:65`)).toBeNull();
  });
});

describe("multipart blob uploads", () => {
  it("uploads part by part in order, resumes from the status, and verifies before completing", async () => {
    const { key } = await newTenant("mp-ok");
    const data = bytesOf(PART + 1000, 1);
    const d = digest(data);
    const s = await start(key, d, data.length);
    expect(s).toMatchObject({ part_size: PART, part_count: 2, parts_done: [], next_part: 1 });

    expect((await putPart(key, d, s.upload_id, 2, data.subarray(PART))).status).toBe(409);
    expect((await putPart(key, d, s.upload_id, 1, data.subarray(0, PART - 64))).status).toBe(400);
    expect((await putPart(key, d, s.upload_id, 1, data.subarray(0, PART))).status).toBe(200);
    expect((await putPart(key, d, s.upload_id, 1, data.subarray(0, PART))).status).toBe(409);

    // A resuming client asks what is done.
    const status = await json<Status>(await call("GET", `${base(d)}/${s.upload_id}`, { key }));
    expect(status).toMatchObject({ parts_done: [1], next_part: 2 });
    expect((await call("HEAD", `/api/blobs/${d}`, { key })).status).toBe(404);

    expect((await putPart(key, d, s.upload_id, 2, data.subarray(PART))).status).toBe(200);
    const done = await call("POST", `${base(d)}/${s.upload_id}/complete`, { key });
    expect(done.status).toBe(201);
    expect((await call("HEAD", `/api/blobs/${d}`, { key })).status).toBe(200);
    const object = await env.BLOBS.get(`blobs/${d.replace(":", "-")}`);
    expect(object!.size).toBe(data.length);
    expect(digest(new Uint8Array(await object!.arrayBuffer()))).toBe(d);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM uploads").first("n")).toBe(0);
  });

  it("a small blob goes through in one part", async () => {
    const { key } = await newTenant("mp-small");
    const data = bytesOf(1234, 2);
    const d = digest(data);
    const s = await start(key, d, data.length);
    expect(s.part_count).toBe(1);
    expect((await putPart(key, d, s.upload_id, 1, data)).status).toBe(200);
    expect((await call("POST", `${base(d)}/${s.upload_id}/complete`, { key })).status).toBe(201);
    expect((await call("HEAD", `/api/blobs/${d}`, { key })).status).toBe(200);
  });

  it("stores nothing when the parts do not hash to the digest", async () => {
    const { key } = await newTenant("mp-mismatch");
    const before = await snapshot();
    const data = bytesOf(4000, 4);
    const d = digest(bytesOf(4000, 5));
    const s = await start(key, d, data.length);
    expect((await putPart(key, d, s.upload_id, 1, data)).status).toBe(200);
    const res = await call("POST", `${base(d)}/${s.upload_id}/complete`, { key });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/^digest mismatch/);
    expect(await snapshot()).toBe(before);
  });

  it("refuses to complete early, and abort cleans up", async () => {
    const { key } = await newTenant("mp-abort");
    const before = await snapshot();
    const data = bytesOf(PART + 10, 6);
    const d = digest(data);
    const s = await start(key, d, data.length);
    expect((await putPart(key, d, s.upload_id, 1, data.subarray(0, PART))).status).toBe(200);
    expect((await call("POST", `${base(d)}/${s.upload_id}/complete`, { key })).status).toBe(400);
    expect((await call("DELETE", `${base(d)}/${s.upload_id}`, { key })).status).toBe(200);
    expect((await call("GET", `${base(d)}/${s.upload_id}`, { key })).status).toBe(404);
    expect(await snapshot()).toBe(before);
  });

  it("keeps uploads private to their tenant", async () => {
    const a = await newTenant("mp-iso-a");
    const b = await newTenant("mp-iso-b");
    const data = bytesOf(100, 7);
    const d = digest(data);
    const s = await start(a.key, d, data.length);
    expect((await call("GET", `${base(d)}/${s.upload_id}`, { key: b.key })).status).toBe(404);
    expect((await putPart(b.key, d, s.upload_id, 1, data)).status).toBe(404);
    expect((await call("POST", `${base(d)}/${s.upload_id}/complete`, { key: b.key })).status).toBe(404);
    expect((await call("DELETE", `${base(d)}/${s.upload_id}`, { key: b.key })).status).toBe(404);
  });

  it.each([
    [{ size: 0 }, 400],
    [{ size: 10, part_size: 1024 }, 400],
    [{ size: 10, part_size: PART + 1 }, 400],
    [{}, 400],
  ])("validates the start request %j", async (body, status) => {
    const { key } = await newTenant(`mp-start-${JSON.stringify(body).replace(/\W/g, "")}`);
    const res = await call("POST", base(digest(bytesOf(10, 8))), { key, body });
    expect(res.status).toBe(status);
  });
});
