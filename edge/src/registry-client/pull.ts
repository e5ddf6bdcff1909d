/**
 * `/api/pull`: a model from an OCI registry into the tenant's namespace, under the name the client used.
 *
 * Progress follows Ollama's PullModel: `pulling manifest`; per blob (layers, then config) `pulling <12 hex>` with
 * digest/total/completed; `verifying sha256 digest`; `writing manifest`; `removing unused layers` only when a model
 * of the same name was replaced and some of its blobs are no longer used; `success`.
 *
 * Writes, so that nothing is half-written: the manifest is validated and the quota checked before any byte is
 * fetched; every referenced digest is pinned (GC stays away); each blob fills a resumable multipart upload that
 * becomes an object only after its SHA-256 matches (the verify step); the model row, its layer rows, inline
 * copies of small layers and the pin release are ONE D1 batch.
 */
import { ApiError, OllamaError } from "@corral/protocol";
import { digestOf } from "@corral/protocol/digest";
import { type ModelName, parseModelName } from "@corral/protocol/names";
import type { PullRequest } from "@corral/protocol/schemas-models";
import { pinForWrite, pinForWriteOrWait, recordBlobStatements, storageUsed, unpin, visibleDigests } from "../db/blobs";
import { getTenant } from "../db/tenants";
import { type Layer, type Manifest, MediaType } from "../store/manifest";
import { requireModelName } from "../store/names";
import { INLINE_MAX_CHARS, saveModel } from "../store/save-model";
import { blobKey } from "../store/store";
import type { BlobJob } from "./blob-download";
import { commitBlob, fetchBlob } from "./blob-fetcher";
import { RegistryClient, type RegistryRef } from "./client";
import { allowPrivateRegistries, networkSettings, type OciEnv, pullSettings } from "./config";
import { loadCredentials } from "./credentials";
import { manifestBlobs, validateRegistryManifest } from "./manifest";
import { blobProgress, type Progress, ProgressThrottle } from "./progress";

const TEXT_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MediaType.template,
  MediaType.system,
  MediaType.params,
  MediaType.messages,
  MediaType.license,
  "application/vnd.ollama.image.prompt",
]);
/** Pins last 15 minutes; a long pull renews them well before that. */
const PIN_RENEW_MS = 5 * 60_000;

/** Ollama's text when a name says http but the request did not say insecure. */
export const INSECURE_PROTOCOL = "insecure protocol http";

/**
 * Where a model name lives: Ollama's rules (http only with `insecure`, which also turns https into http), the
 * repository `namespace/model`, and the tenant's stored credentials for that host. Throws before anything is sent.
 */
export async function registryFor(
  env: OciEnv,
  tenantId: string,
  name: ModelName,
  insecure: boolean,
): Promise<RegistryRef> {
  if (name.scheme === "http" && !insecure) throw new ApiError(400, INSECURE_PROTOCOL);
  const ref: RegistryRef = {
    base: `${insecure ? "http" : "https"}://${name.host}`,
    repository: `${name.namespace}/${name.model}`,
    insecure,
    allowPrivate: allowPrivateRegistries(env),
    network: networkSettings(env),
  };
  // Constructing a client runs the SSRF guard on the base URL.
  const client = new RegistryClient(ref);
  const credentials = await loadCredentials(env.DB, env.CREDENTIALS_KEY, tenantId, client.baseUrl.host.toLowerCase());
  if (credentials) ref.credentials = credentials;
  return ref;
}

/** Refuses, before any byte is fetched, a model that would take the tenant past its storage quota. */
async function assertModelFitsQuota(env: OciEnv, tenantId: string, blobs: Layer[], visible: Set<string>) {
  const tenant = await getTenant(env.DB, tenantId);
  const quota = tenant?.quotas.storage_bytes ?? null;
  if (quota === null) return;
  const needed = blobs.filter((b) => !visible.has(b.digest)).reduce((n, b) => n + b.size, 0);
  const used = await storageUsed(env.DB, tenantId);
  if (used + needed > quota) {
    throw new ApiError(413, `storage quota exceeded: ${used} of ${quota} bytes used, this model needs ${needed} more`);
  }
}

/** The text of small text layers, kept inline in D1 so resolve and show never read them from R2. */
async function inlineContents(env: OciEnv, layers: Layer[], configDigest: string) {
  const blobs: { digest: string; size: number; content: string }[] = [];
  for (const l of layers) {
    if (l.size > INLINE_MAX_CHARS || !(TEXT_MEDIA_TYPES.has(l.mediaType) || l.digest === configDigest)) continue;
    const object = await env.BLOBS.get(blobKey(l.digest));
    if (!object) continue;
    try {
      const content = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(await object.arrayBuffer());
      blobs.push({ digest: l.digest, size: l.size, content });
    } catch {
      // not UTF-8: stays in R2 only
    }
  }
  return blobs;
}

export async function* pullModel(
  env: OciEnv,
  tenantId: string,
  request: Pick<PullRequest, "model" | "insecure">,
  signal: AbortSignal,
  /** Tests substitute the network; downloads then run in this request instead of the BlobFetcher. */
  fetcher?: typeof fetch,
): AsyncGenerator<Progress, void, undefined> {
  const parsed = parseModelName(request.model);
  if (!parsed) throw new ApiError(400, OllamaError.invalidModelName);
  const name = requireModelName(request.model);
  const registry = await registryFor(env, tenantId, parsed, request.insecure);
  const client = new RegistryClient(registry, fetcher);

  yield { status: "pulling manifest" };
  const { bytes, claimedDigest } = await client.getManifest(parsed.tag, signal);
  const manifest: Manifest = validateRegistryManifest(bytes);
  const manifestDigest = digestOf(bytes);
  if (claimedDigest?.startsWith("sha256:") && claimedDigest !== manifestDigest) {
    throw new ApiError(
      502,
      `manifest digest mismatch: registry says ${claimedDigest}, bytes hash to ${manifestDigest}`,
    );
  }
  const blobs = manifestBlobs(manifest);
  const digests = blobs.map((b) => b.digest);
  const visible = await visibleDigests(env.DB, tenantId, digests);
  await assertModelFitsQuota(env, tenantId, blobs, visible);

  const holder = `pull-${crypto.randomUUID()}`;
  await pinForWriteOrWait(env.DB, digests, holder);
  let pinnedAt = Date.now();
  let pinned = true;
  const renewPins = async () => {
    if (Date.now() - pinnedAt < PIN_RENEW_MS) return;
    await pinForWrite(env.DB, digests, holder);
    pinnedAt = Date.now();
  };
  try {
    const settings = pullSettings(env);
    const fetched: { layer: Layer; uploadId: string | null }[] = [];
    for (const layer of blobs) {
      if (visible.has(layer.digest)) {
        yield blobProgress("pulling", layer.digest, layer.size, layer.size);
        continue;
      }
      const job: BlobJob = { tenantId, digest: layer.digest, size: layer.size, registry: client.snapshot(), settings };
      const download = fetchBlob(env, job, signal, fetcher);
      const throttle = new ProgressThrottle();
      let last = -1;
      for (;;) {
        const next = await download.next();
        if (next.done) {
          fetched.push({ layer, uploadId: next.value });
          break;
        }
        if (next.value !== last && throttle.due(next.value === layer.size)) {
          last = next.value;
          yield blobProgress("pulling", layer.digest, layer.size, next.value);
        }
        await renewPins();
      }
      if (last !== layer.size) yield blobProgress("pulling", layer.digest, layer.size, layer.size);
    }

    yield { status: "verifying sha256 digest" };
    for (const { layer, uploadId } of fetched) {
      signal.throwIfAborted();
      await commitBlob(env, { tenantId, digest: layer.digest, size: layer.size, uploadId }, fetcher !== undefined);
    }
    await renewPins();

    yield { status: "writing manifest" };
    const text = new TextDecoder().decode(bytes);
    const downloaded = fetched.map((f) => f.layer);
    const inline = await inlineContents(env, downloaded, manifest.config.digest);
    const saved = await saveModel(env, {
      tenantId,
      name,
      manifest: {
        text,
        digest: manifestDigest,
        size: manifest.layers.reduce((n, l) => n + l.size, manifest.config.size),
      },
      digests,
      holder,
      verb: "pulled",
      alongside: (now) => inline.flatMap((blob) => recordBlobStatements(env.DB, blob, tenantId, now)),
    });
    pinned = false;
    if (saved.stale.length > 0) {
      yield { status: "removing unused layers" };
      await saved.releaseStale();
    }
    yield { status: "success" };
  } finally {
    if (pinned) await unpin(env.DB, holder).catch(() => {});
  }
}
