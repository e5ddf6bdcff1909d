/**
 * `/api/push`: one of the tenant's models to the registry its name points at (as in Ollama, the model is first
 * copied to `host/namespace/model:tag`, then pushed under that name).
 *
 * Progress: `retrieving manifest`; per blob (layers, then config) either `pushing <12 hex>` at 100% when the
 * registry has it already (HEAD), or `starting upload` then `pushing <12 hex>` as chunks go out (POST, PATCH
 * with Content-Range, PUT ?digest=); `pushing manifest` (the stored manifest bytes, so the digest is unchanged);
 * `success`.
 */
import { ApiError } from "@corral/protocol";
import { parseModelName } from "@corral/protocol/names";
import type { PushRequest } from "@corral/protocol/schemas-models";
import { getModel } from "../db/models";
import { type Layer, MANIFEST_MEDIA_TYPE, parseManifest } from "../store/manifest";
import { modelNotFound, tenantModelName } from "../store/names";
import { blobKey } from "../store/store";
import { isRetryableFailure, RegistryClient } from "./client";
import { type OciEnv, pushSettings } from "./config";
import { sleep } from "./http";
import { manifestBlobs } from "./manifest";
import { blobProgress, type Progress } from "./progress";
import { registryFor } from "./pull";

const CHUNK_ATTEMPTS = 3;

async function readChunk(env: OciEnv, digest: string, offset: number, length: number): Promise<Uint8Array> {
  const object = await env.BLOBS.get(blobKey(digest), { range: { offset, length } });
  if (!object) throw new ApiError(500, `blob ${digest} is missing from the bucket`);
  const bytes = new Uint8Array(await object.arrayBuffer());
  if (bytes.byteLength !== length) throw new ApiError(500, `blob ${digest} is shorter than its manifest says`);
  return bytes;
}

/** Sends one chunk, retrying transient failures (a chunk is replayable: it is in memory). */
async function sendChunk(
  client: RegistryClient,
  location: URL,
  bytes: Uint8Array,
  offset: number,
  signal: AbortSignal,
): Promise<URL> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.uploadChunk(location, bytes, offset, signal);
    } catch (err) {
      signal.throwIfAborted();
      if (!isRetryableFailure(err) || attempt >= CHUNK_ATTEMPTS) throw err;
      await sleep(500 * attempt, signal);
    }
  }
}

async function* uploadBlob(
  env: OciEnv,
  client: RegistryClient,
  layer: Layer,
  chunkSize: number,
  signal: AbortSignal,
): AsyncGenerator<Progress, void, undefined> {
  if (await client.blobExists(layer.digest, signal)) {
    yield blobProgress("pushing", layer.digest, layer.size, layer.size);
    return;
  }
  yield { status: "starting upload", digest: layer.digest, total: layer.size, completed: 0 };
  let location = await client.startUpload(signal);
  for (let offset = 0; offset < layer.size; offset += chunkSize) {
    const length = Math.min(chunkSize, layer.size - offset);
    const bytes = await readChunk(env, layer.digest, offset, length);
    location = await sendChunk(client, location, bytes, offset, signal);
    yield blobProgress("pushing", layer.digest, layer.size, offset + length);
  }
  await client.finishUpload(location, layer.digest, signal);
  if (layer.size === 0) yield blobProgress("pushing", layer.digest, 0, 0);
}

export async function* pushModel(
  env: OciEnv,
  tenantId: string,
  request: Pick<PushRequest, "model" | "insecure">,
  signal: AbortSignal,
  /** Tests substitute the network. */
  fetcher?: typeof fetch,
): AsyncGenerator<Progress, void, undefined> {
  const name = tenantModelName(request.model);
  const parsed = parseModelName(request.model);
  if (!name || !parsed) throw modelNotFound(request.model);
  // Another tenant's model answers exactly like a missing one.
  const row = await getModel(env.DB, tenantId, name.key);
  if (!row) throw modelNotFound(request.model);
  const registry = await registryFor(env, tenantId, parsed, request.insecure);
  const client = new RegistryClient(registry, fetcher);

  yield { status: "retrieving manifest" };
  const manifest = parseManifest(row.manifest);
  const { chunkSize } = pushSettings(env);
  for (const layer of manifestBlobs(manifest)) {
    yield* uploadBlob(env, client, layer, chunkSize, signal);
  }

  yield { status: "pushing manifest" };
  await client.putManifest(parsed.tag, row.manifest, manifest.mediaType || MANIFEST_MEDIA_TYPE, signal);
  yield { status: "success" };
}
