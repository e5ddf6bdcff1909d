/**
 * Validation of manifests pulled from registries. A registry is untrusted: its manifest names the digests that
 * become bucket keys and ownership rows and the sizes that quota and part plans are computed from, so everything
 * is checked before a byte is fetched, and a bad manifest changes nothing.
 */
import { ApiError } from "@corral/protocol";
import { CONFIG_MEDIA_TYPE, type Layer, MANIFEST_MEDIA_TYPE, type Manifest, MediaType } from "../store/manifest";
import { OCI_MANIFEST_V1 } from "./client";

/** Layer media types corral can serve (Ollama's, minus MLX safetensors); the legacy `prompt` is a template. */
export const KNOWN_LAYER_MEDIA_TYPES: ReadonlySet<string> = new Set([
  ...Object.values(MediaType),
  "application/vnd.ollama.image.prompt",
]);
const CONFIG_MEDIA_TYPES: ReadonlySet<string> = new Set([
  CONFIG_MEDIA_TYPE,
  "application/vnd.oci.image.config.v1+json",
]);
const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([MANIFEST_MEDIA_TYPE, OCI_MANIFEST_V1]);

export const MAX_LAYERS = 64;
/** Far beyond any model today (R2's own object limit is about 5 TiB); refuses sizes meant to overflow arithmetic. */
export const MAX_BLOB_SIZE = 2 ** 40;
/** Ollama's config blob is a few hundred bytes of JSON. */
export const MAX_CONFIG_SIZE = 1024 * 1024;

const CANONICAL_DIGEST = /^sha256:[0-9a-f]{64}$/;

const invalid = (why: string) => new ApiError(400, `invalid manifest: ${why}`);

function layer(raw: unknown, where: string, mediaTypes: ReadonlySet<string>, maxSize: number): Layer {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw invalid(`${where} is not an object`);
  const { mediaType, digest, size, from, name } = raw as Record<string, unknown>;
  if (typeof digest !== "string" || !CANONICAL_DIGEST.test(digest)) {
    throw invalid(`${where} has an invalid digest ${JSON.stringify(String(digest).slice(0, 100))}`);
  }
  if (typeof mediaType !== "string") throw invalid(`${where} has no media type`);
  if (!mediaTypes.has(mediaType))
    throw invalid(`${where} has an unsupported media type ${JSON.stringify(mediaType.slice(0, 100))}`);
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0 || size > maxSize) {
    throw invalid(`${where} has an invalid size ${JSON.stringify(size)}`);
  }
  const out: Layer = { mediaType, digest, size };
  // `from` and `name` are informational in Ollama's manifests; keep short strings, drop anything else.
  if (typeof from === "string" && from.length <= 1024) out.from = from;
  if (typeof name === "string" && name.length <= 1024) out.name = name;
  return out;
}

/** Parses and checks a registry manifest; throws ApiError 400 `invalid manifest: …` on anything unexpected. */
export function validateRegistryManifest(bytes: Uint8Array): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes));
  } catch {
    throw invalid("not JSON");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw invalid("not an object");
  const m = raw as Record<string, unknown>;
  if (m.schemaVersion !== 2) throw invalid(`schemaVersion ${JSON.stringify(m.schemaVersion)} is not 2`);
  if (m.mediaType !== undefined && (typeof m.mediaType !== "string" || !MANIFEST_MEDIA_TYPES.has(m.mediaType))) {
    throw invalid(`unsupported manifest media type ${JSON.stringify(String(m.mediaType).slice(0, 100))}`);
  }
  const config = layer(m.config, "config", CONFIG_MEDIA_TYPES, MAX_CONFIG_SIZE);
  if (!Array.isArray(m.layers)) throw invalid("layers is not a list");
  if (m.layers.length === 0) throw invalid("no layers");
  if (m.layers.length > MAX_LAYERS) throw invalid(`more than ${MAX_LAYERS} layers`);
  const layers = m.layers.map((l, i) => layer(l, `layer ${i}`, KNOWN_LAYER_MEDIA_TYPES, MAX_BLOB_SIZE));
  // One digest is one set of bytes: two sizes for it mean the manifest is lying about one of them.
  const sizes = new Map<string, number>();
  for (const l of [config, ...layers]) {
    const seen = sizes.get(l.digest);
    if (seen !== undefined && seen !== l.size) throw invalid(`digest ${l.digest} is listed with two sizes`);
    sizes.set(l.digest, l.size);
  }
  return {
    schemaVersion: 2,
    mediaType: typeof m.mediaType === "string" ? m.mediaType : MANIFEST_MEDIA_TYPE,
    config,
    layers,
  };
}

/** The blobs to fetch, in Ollama's order (layers, then config), each digest once. */
export function manifestBlobs(m: Manifest): Layer[] {
  const seen = new Set<string>();
  const out: Layer[] = [];
  for (const l of [...m.layers, m.config]) {
    if (seen.has(l.digest)) continue;
    seen.add(l.digest);
    out.push(l);
  }
  return out;
}
