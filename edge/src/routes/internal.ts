import { ApiError } from "@corral/protocol";
import { parseDigest } from "@corral/protocol/digest";
import { BlobIntentSchema, readRunnerStatus } from "@corral/protocol/runner";
import { Hono } from "hono";
import { readBody, readJson } from "../body";
import type { AppBindings } from "../env";
import { schedulerStub } from "../scheduler/client";
import { announceRunnerBlob, storeRunnerBlob } from "../store/runner-blobs";
import { blobKey } from "../store/store";
import { requireContentLength } from "../store/upload";

/** Endpoints for runners (the runner secret is checked by the app's middleware). */
export const internalRoutes = new Hono<AppBindings>()
  .post("/runners/heartbeat", async (c) => {
    // One bad entry never costs the runner: refusing the heartbeat would evict it, and every tenant with it.
    const read = readRunnerStatus(await readBody(c));
    if (!read.ok) throw new ApiError(400, read.error);
    if (read.dropped.length > 0) console.warn(`heartbeat from ${read.status.id}: ${read.dropped.join("; ")}`);
    return c.json(await schedulerStub(c.env).heartbeat(read.status, read.dropped.length));
  })
  .put("/blobs/:digest", async (c) => {
    const digest = parseDigest(c.req.param("digest"));
    if (!digest) throw new ApiError(400, "invalid digest format");
    const length = requireContentLength(c.req.header("content-length"));
    const outcome = await storeRunnerBlob(c.env, digest, c.req.raw.body, length);
    return c.body(null, outcome === "created" ? 201 : 200);
  })
  .post("/blobs/:digest/intent", async (c) => {
    const digest = parseDigest(c.req.param("digest"));
    if (!digest) throw new ApiError(400, "invalid digest format");
    const intent = await readJson(c, BlobIntentSchema, "blob intent");
    const outcome = await announceRunnerBlob(c.env, digest, intent.size);
    return c.body(null, outcome === "created" ? 201 : 200);
  })
  .get("/blobs/:digest", async (c) => {
    // Validated before it becomes a key: nothing but a well-formed digest names an object.
    const digest = parseDigest(c.req.param("digest"));
    if (!digest) throw new ApiError(400, "invalid digest format");
    const range = parseRange(c.req.header("range"));
    let object: R2Object | R2ObjectBody | null;
    try {
      object = await c.env.BLOBS.get(blobKey(digest), range ? { range } : {});
    } catch (err) {
      // R2 refuses a range that starts past the end; answer it as HTTP does.
      const head = range ? await c.env.BLOBS.head(blobKey(digest)) : null;
      if (!head) throw err;
      return new Response(null, { status: 416, headers: { "content-range": `bytes */${head.size}` } });
    }
    if (!object) throw new ApiError(404, "blob not found");
    if (!("body" in object)) throw new ApiError(416, "range not satisfiable");
    const headers = new Headers({
      "content-type": "application/octet-stream",
      "accept-ranges": "bytes",
      etag: `"${digest}"`,
    });
    const size = object.size;
    if (!range) {
      headers.set("content-length", String(size));
      return new Response(object.body, { status: 200, headers });
    }
    const { start, end } = resolveRange(range, size);
    if (start >= size || end < start) {
      await object.body.cancel();
      return new Response(null, { status: 416, headers: { "content-range": `bytes */${size}` } });
    }
    headers.set("content-range", `bytes ${start}-${end}/${size}`);
    headers.set("content-length", String(end - start + 1));
    return new Response(object.body, { status: 206, headers });
  });

type ByteRange = { offset: number; length?: number } | { suffix: number };

/** A single `bytes=` range (what runners send for parallel ranged GETs); anything else means the whole blob. */
export function parseRange(header: string | undefined): ByteRange | undefined {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") return { suffix: Number(m[2]) };
  const offset = Number(m[1]);
  if (m[2] === "") return { offset };
  const last = Number(m[2]);
  if (last < offset) return undefined;
  return { offset, length: last - offset + 1 };
}

function resolveRange(range: ByteRange, size: number): { start: number; end: number } {
  if ("suffix" in range) return { start: Math.max(0, size - range.suffix), end: size - 1 };
  const end = range.length === undefined ? size - 1 : Math.min(size - 1, range.offset + range.length - 1);
  return { start: range.offset, end };
}
