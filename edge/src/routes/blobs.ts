import { ApiError } from "@corral/protocol";
import { requireDigest } from "@corral/protocol/digest";
import { Hono } from "hono";
import { readJson } from "../body";
import { visibleBlob } from "../db/blobs";
import type { AppBindings } from "../env";
import { storeChunkedBlob } from "../store/chunked-upload";
import {
  abortUpload,
  completeUpload,
  StartUploadSchema,
  startUpload,
  uploadPart,
  uploadStatus,
} from "../store/multipart";
import { requireContentLength, storeBlob } from "../store/upload";

/**
 * Blobs: Ollama's `HEAD`/`POST /api/blobs/:digest`, plus corral's resumable multipart upload API for blobs
 * beyond the request-body cap (edge/UPLOADS.md). A blob the tenant neither owns nor uses reads as missing.
 */
export const blobsRoutes = new Hono<AppBindings>()
  // Hono dispatches HEAD to GET routes; Ollama has only HEAD here, so a real GET is an unknown route.
  .get("/blobs/:digest", async (c) => {
    if (c.req.method !== "HEAD") throw new ApiError(404, "404 page not found");
    const digest = requireDigest(c.req.param("digest"));
    if (!(await visibleBlob(c.env.DB, c.get("tenantId"), digest))) {
      throw new ApiError(404, `blob ${JSON.stringify(c.req.param("digest"))} not found`);
    }
    return c.body(null, 200);
  })
  .post("/blobs/:digest", async (c) => {
    const digest = requireDigest(c.req.param("digest"));
    // Ollama's clients stream blobs chunked, without a length: those go part by part (chunked-upload.ts).
    const header = c.req.header("content-length");
    const outcome =
      header === undefined
        ? await storeChunkedBlob(c.env, c.get("tenantId"), digest, c.req.raw.body)
        : await storeBlob(c.env, c.get("tenantId"), digest, c.req.raw.body, requireContentLength(header));
    return c.body(null, outcome === "created" ? 201 : 200);
  })
  .post("/blobs/:digest/uploads", async (c) => {
    const digest = requireDigest(c.req.param("digest"));
    const request = await readJson(c, StartUploadSchema);
    return c.json(await startUpload(c.env, c.get("tenantId"), digest, request), 201);
  })
  .get("/blobs/:digest/uploads/:id", async (c) => {
    const digest = requireDigest(c.req.param("digest"));
    return c.json(await uploadStatus(c.env, c.get("tenantId"), digest, c.req.param("id")));
  })
  .put("/blobs/:digest/uploads/:id/parts/:n", async (c) => {
    const digest = requireDigest(c.req.param("digest"));
    const n = c.req.param("n");
    if (!/^\d{1,5}$/.test(n)) throw new ApiError(400, "invalid part number");
    const length = requireContentLength(c.req.header("content-length"));
    const status = await uploadPart(
      c.env,
      c.get("tenantId"),
      digest,
      c.req.param("id"),
      Number(n),
      c.req.raw.body,
      length,
    );
    return c.json(status);
  })
  .post("/blobs/:digest/uploads/:id/complete", async (c) => {
    const digest = requireDigest(c.req.param("digest"));
    const outcome = await completeUpload(c.env, c.get("tenantId"), digest, c.req.param("id"));
    return c.json({ digest, status: "success" }, outcome === "created" ? 201 : 200);
  })
  .delete("/blobs/:digest/uploads/:id", async (c) => {
    const digest = requireDigest(c.req.param("digest"));
    await abortUpload(c.env, c.get("tenantId"), digest, c.req.param("id"));
    return c.json({ status: "aborted" });
  });
