/**
 * Resolving a tenant's model name to everything a runner needs. This is on the hot path of every inference
 * request, so it is one D1 batch (the model row and the inline text of its small layers); R2 is read only for a
 * small layer that has no inline copy.
 */
import type { ApiError } from "@corral/protocol";
import type { ResolvedModel } from "@corral/protocol/runner";
import { getModelWithInlineLayers, listModelsWithInlineLayers } from "../db/models";
import type { Env } from "../env";
import { cachedSummary, type ModelShape, modelShape } from "./gguf";
import { type Layer, type Manifest, MediaType, parseManifest } from "./manifest";
import { modelNotFound, tenantModelName } from "./names";
import { readBlobText } from "./store";

export interface LoadedModel {
  /** Storage key (lower-cased full name). */
  key: string;
  display_name: string;
  digest: string;
  size: number;
  modified_at: number;
  manifest: Manifest;
  /** The stored manifest text, byte for byte (its digest is the model's identity). */
  manifestText: string;
  /** Inline text of small layers (config, template, system, params, messages, license) by digest. */
  contents: Map<string, string>;
  /** Cached GGUF summaries (blobs.gguf) of the layers that have one, by digest. */
  summaries: Map<string, string>;
}

/**
 * Loads a tenant's model, or throws Ollama's 404 — for invalid names and other tenants' models too, so the
 * answer never reveals that a name exists elsewhere.
 */
export async function loadModel(
  env: Env,
  tenantId: string,
  name: string,
  notFound: (name: string) => ApiError = modelNotFound,
): Promise<LoadedModel> {
  const parsed = tenantModelName(name);
  if (!parsed) throw notFound(name);
  const found = await getModelWithInlineLayers(env.DB, tenantId, parsed.key);
  if (!found) throw notFound(name);
  return loadedModel(parsed.key, found.row, found.contents, found.summaries);
}

/** All of a tenant's models, newest first, loaded from one D1 batch (what /api/tags lists). */
export async function loadTenantModels(env: Env, tenantId: string): Promise<LoadedModel[]> {
  const { rows, contents, summaries } = await listModelsWithInlineLayers(env.DB, tenantId);
  return rows.map((row) => loadedModel(row.name, row, contents, summaries));
}

/** A model row and the inline layers its D1 batch brought, as the store's callers use them. */
function loadedModel(
  key: string,
  row: { display_name: string; digest: string; size: number; modified_at: number; manifest: string },
  contents: LoadedModel["contents"],
  summaries: LoadedModel["summaries"],
): LoadedModel {
  return {
    key,
    display_name: row.display_name,
    digest: row.digest,
    size: row.size,
    modified_at: row.modified_at,
    manifest: parseManifest(row.manifest),
    manifestText: row.manifest,
    contents,
    summaries,
  };
}

/** The text of a small layer: its inline copy, else the bucket. */
export async function layerText(env: Env, model: LoadedModel, layer: Layer): Promise<string> {
  return model.contents.get(layer.digest) ?? (await readBlobText(env.BLOBS, layer.digest));
}

export interface ModelTexts {
  template?: string;
  system?: string;
  params: Record<string, unknown>;
  messages: Record<string, unknown>[];
  licenses: string[];
}

/** Template, system, params, messages and licenses of a loaded model (Ollama keeps the last of each kind). */
export async function modelTexts(env: Env, model: LoadedModel): Promise<ModelTexts> {
  const texts: ModelTexts = { params: {}, messages: [], licenses: [] };
  for (const layer of model.manifest.layers) {
    switch (layer.mediaType) {
      case MediaType.template:
        texts.template = await layerText(env, model, layer);
        break;
      case MediaType.system:
        texts.system = await layerText(env, model, layer);
        break;
      case MediaType.license:
        texts.licenses.push(await layerText(env, model, layer));
        break;
      case MediaType.params:
        texts.params = parseJsonLayer(await layerText(env, model, layer), {}) as Record<string, unknown>;
        break;
      case MediaType.messages:
        texts.messages = parseJsonLayer(await layerText(env, model, layer), []) as Record<string, unknown>[];
        break;
    }
  }
  return texts;
}

function parseJsonLayer(text: string, fallback: unknown): unknown {
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(fallback) ? Array.isArray(value) : value && typeof value === "object") return value;
  } catch {
    // A layer that is not JSON (possible only for pulled models) is treated as empty rather than failing inference.
  }
  return fallback;
}

/** A model resolved for a run: what the runner gets, and the weights' shape (from the GGUF) the edge plans with. */
export interface ModelForRun {
  model: ResolvedModel;
  shape: ModelShape | null;
}

/**
 * A tenant's model name → manifest digest, weights, adapters, template, system, default params and messages.
 * Throws ApiError 404 `model "<name>" not found, try pulling it first` when absent, invalid or another tenant's.
 */
export async function resolveModel(env: Env, tenantId: string, name: string): Promise<ModelForRun> {
  const model = await loadModel(env, tenantId, name);
  const weights = model.manifest.layers.find((l) => l.mediaType === MediaType.model);
  // A manifest without weights cannot run; Ollama answers the same way for a model it cannot load.
  if (!weights) throw modelNotFound(name);
  const texts = await modelTexts(env, model);
  const resolved: ResolvedModel = {
    name,
    // Bare hex, as /api/tags and /api/ps show it.
    digest: model.digest.replace(/^sha256:/, ""),
    model_blob: weights.digest,
    model_size: weights.size,
    adapters: model.manifest.layers
      .filter((l) => l.mediaType === MediaType.adapter)
      .map((l) => ({ digest: l.digest, size: l.size })),
    params: texts.params,
    messages: texts.messages,
  };
  const projector = model.manifest.layers.find((l) => l.mediaType === MediaType.projector);
  if (projector) resolved.projector = { digest: projector.digest, size: projector.size };
  if (texts.template !== undefined) resolved.template = texts.template;
  if (texts.system !== undefined) resolved.system = texts.system;
  const summary = cachedSummary(model.summaries.get(weights.digest) ?? null);
  return { model: resolved, shape: summary ? modelShape(summary) : null };
}
