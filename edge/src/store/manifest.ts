/**
 * Ollama's image manifest: a Docker v2 manifest whose config blob is Ollama's ConfigV2 and whose layers carry
 * `application/vnd.ollama.image.*` media types. Every piece is serialised byte-for-byte as Ollama's Go code does
 * (encoding/json Encoder: struct field order, sorted map keys, HTML escaping, trailing newline), so the same
 * content gives the same blob and manifest digests as Ollama — pull and push depend on that.
 */
import { ApiError } from "@corral/protocol";
import { digestOf } from "@corral/protocol/digest";

export const MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json";
export const CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json";

export const MediaType = {
  model: "application/vnd.ollama.image.model",
  adapter: "application/vnd.ollama.image.adapter",
  projector: "application/vnd.ollama.image.projector",
  template: "application/vnd.ollama.image.template",
  system: "application/vnd.ollama.image.system",
  params: "application/vnd.ollama.image.params",
  messages: "application/vnd.ollama.image.messages",
  license: "application/vnd.ollama.image.license",
} as const;

/** Layers whose bytes are GGUF files (read by runners, never inlined in D1). */
export const GGUF_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaType.model, MediaType.adapter, MediaType.projector]);

/** manifest.Layer: `from` and `name` are omitempty. */
export interface Layer {
  mediaType: string;
  digest: string;
  size: number;
  from?: string;
  name?: string;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType: string;
  config: Layer;
  layers: Layer[];
}

/** model.ConfigV2 fields corral fills; the rest are omitempty in Ollama and absent here. */
export interface ConfigV2 {
  model_format: string;
  model_family: string;
  model_families: string[] | null;
  model_type: string;
  file_type: string;
  architecture: string;
  os: string;
}

/**
 * Go's `json.NewEncoder(w).Encode(v)`: compact JSON, `<`, `>`, `&`, U+2028 and U+2029 escaped, newline at the end.
 * Callers pass objects whose keys are already in Go's order (struct order, or sorted for maps).
 */
export function goJson(value: unknown): string {
  return `${JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, goEscape)}\n`;
}

const goEscape = (ch: string) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** A Go map[string]any: keys sorted (byte order equals UTF-16 order for the ASCII keys options use). */
export function sortedKeys(map: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(map).sort()) out[key] = map[key];
  return out;
}

export function layerJson(l: Layer): Layer {
  const out: Layer = { mediaType: l.mediaType, digest: l.digest, size: l.size };
  if (l.from) out.from = l.from;
  if (l.name) out.name = l.name;
  return out;
}

export function configJson(c: ConfigV2): string {
  return goJson({
    model_format: c.model_format,
    model_family: c.model_family,
    model_families: c.model_families,
    model_type: c.model_type,
    file_type: c.file_type,
    architecture: c.architecture,
    os: c.os,
  });
}

export interface EncodedManifest {
  manifest: Manifest;
  text: string;
  digest: string;
  /** Sum of layer and config sizes (Ollama's Manifest.Size, what tags shows). */
  size: number;
}

export function encodeManifest(config: Layer, layers: Layer[]): EncodedManifest {
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MANIFEST_MEDIA_TYPE,
    config: layerJson(config),
    layers: layers.map(layerJson),
  };
  const text = goJson(manifest);
  const size = layers.reduce((n, l) => n + l.size, config.size);
  return { manifest, text, digest: digestOf(new TextEncoder().encode(text)), size };
}

/** Reads a manifest corral stored itself; anything malformed is a server fault, never the client's. */
export function parseManifest(text: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ApiError(500, "stored manifest is corrupt");
  }
  const m = raw as Partial<Manifest>;
  if (!m || !Array.isArray(m.layers) || !m.config || typeof m.config.digest !== "string") {
    throw new ApiError(500, "stored manifest is corrupt");
  }
  return m as Manifest;
}

/** Every digest a manifest references (config first), without duplicates. */
export function manifestDigests(m: Manifest): string[] {
  return [...new Set([m.config.digest, ...m.layers.map((l) => l.digest)])];
}
