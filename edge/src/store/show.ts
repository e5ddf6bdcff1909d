/**
 * `/api/show` and the `details` both show and tags report. Everything comes from D1 (the manifest, inline small
 * layers, the cached GGUF summary); only `verbose` reads the GGUF header from R2 again, for full arrays and
 * the tensor list.
 */
import { ApiError, formatParameters, OllamaError, type Options } from "@corral/protocol";
import type { ShowRequest } from "@corral/protocol/schemas-models";
import type { ModelDetails, ShowResponse } from "@corral/protocol/types";
import { blobRows, saveGgufSummary } from "../db/blobs";
import type { Env } from "../env";
import { cachedSummary, type GgufSummary, readHeader, summarise, verboseInfo } from "./gguf";
import { type Layer, MediaType, sortedKeys } from "./manifest";
import { type ModelfileCommand, renderCommand } from "./modelfile";
import { tenantModelName } from "./names";
import { type LoadedModel, layerText, loadModel, modelTexts } from "./resolve";
import { modelCapabilities } from "./template";

/** Ollama's template.DefaultTemplate, shown when a model has neither a template layer nor a GGUF chat template. */
export const DEFAULT_TEMPLATE = "{{ .Prompt }}";

interface ConfigFields {
  model_format?: string;
  model_family?: string;
  model_families?: string[] | null;
  model_type?: string;
  file_type?: string;
}

/** `details` from the config blob's text (model_format, model_family, ... as Ollama's ConfigV2 names them). */
export function detailsFromConfig(configText: string | null | undefined, parentModel: string): ModelDetails {
  let config: ConfigFields = {};
  try {
    config = configText ? (JSON.parse(configText) as ConfigFields) : {};
  } catch {
    // A config that is not JSON (only possible for pulled models) shows empty details rather than failing.
  }
  return {
    parent_model: parentModel,
    format: config.model_format ?? "",
    family: config.model_family ?? "",
    families: config.model_families ?? null,
    parameter_size: config.model_type ?? "",
    quantization_level: config.file_type ?? "",
  };
}

/**
 * GGUF summaries by weights digest, kept in the isolate: a digest names fixed bytes, so its summary never changes
 * and needs no invalidation. It saves /api/show a D1 round trip. Bounded; the oldest entry goes first.
 */
const summaries = new Map<string, GgufSummary>();
const MAX_SUMMARIES = 256;

function remember(digest: string, summary: GgufSummary): GgufSummary {
  if (summaries.size >= MAX_SUMMARIES) {
    const oldest = summaries.keys().next();
    if (!oldest.done) summaries.delete(oldest.value);
  }
  summaries.set(digest, summary);
  return summary;
}

/**
 * The GGUF summary of a model's weights (shared between requests: treat it as read-only). `cached` holds the
 * summaries the model's D1 read already brought; only a blob without one costs another query or an R2 read.
 */
export async function weightsSummary(
  env: Env,
  weights: Layer | undefined,
  cached?: ReadonlyMap<string, string>,
): Promise<GgufSummary | null> {
  if (!weights) return null;
  const known = summaries.get(weights.digest) ?? cachedSummary(cached?.get(weights.digest) ?? null);
  if (known) return remember(weights.digest, known);
  const row = (await blobRows(env.DB, [weights.digest])).get(weights.digest);
  const stored = cachedSummary(row?.gguf ?? null);
  if (stored) return remember(weights.digest, stored);
  // Blobs that arrived without a summary (e.g. by pull) are parsed once, then served from D1.
  const summary = summarise(await readHeader(env, weights.digest, weights.size));
  await saveGgufSummary(env.DB, weights.digest, JSON.stringify(summary));
  return remember(weights.digest, summary);
}

/** What show and tags both report about a model: its texts, weights and projector summaries, and capabilities. */
export async function describeModelLayers(env: Env, model: LoadedModel) {
  const layers = model.manifest.layers;
  const weightsLayer = layers.find((l) => l.mediaType === MediaType.model);
  const projectorLayer = layers.find((l) => l.mediaType === MediaType.projector);
  const [texts, summary, projector] = await Promise.all([
    modelTexts(env, model),
    weightsSummary(env, weightsLayer, model.summaries),
    weightsSummary(env, projectorLayer, model.summaries),
  ]);
  const capabilities = modelCapabilities(summary, texts.template, projectorLayer !== undefined);
  return { weightsLayer, texts, summary, projector, capabilities };
}

/** Go's %v of an option value (what `ollama show --modelfile` prints after PARAMETER). */
const goValue = (v: unknown) => String(v);

export function renderModelfile(
  model: LoadedModel,
  parts: {
    template: string;
    system?: string;
    params: Record<string, unknown>;
    licenses: string[];
    messages: { role?: unknown; content?: unknown }[];
  },
): string {
  const commands: ModelfileCommand[] = [];
  for (const l of model.manifest.layers) {
    // Server paths never leave the edge; a digest is what FROM/ADAPTER accept back.
    if (l.mediaType === MediaType.model || l.mediaType === MediaType.projector)
      commands.push({ name: "model", args: l.digest });
  }
  for (const l of model.manifest.layers)
    if (l.mediaType === MediaType.adapter) commands.push({ name: "adapter", args: l.digest });
  commands.push({ name: "template", args: parts.template });
  if (parts.system) commands.push({ name: "system", args: parts.system });
  for (const [key, value] of Object.entries(sortedKeys(parts.params))) {
    for (const item of Array.isArray(value) ? value : [value]) commands.push({ name: key, args: goValue(item) });
  }
  for (const license of parts.licenses) commands.push({ name: "license", args: license });
  for (const m of parts.messages) commands.push({ name: "message", args: `${String(m.role)}: ${String(m.content)}` });
  const body = commands.map((c) => `${renderCommand(c)}\n`).join("");
  return `# Modelfile generated by "ollama show"\n# To build a new Modelfile based on this, replace FROM with:\n# FROM ${model.display_name}\n\n${body}`;
}

/** Ollama's show texts: an unusable name is a 400, a missing model `model 'x:latest' not found`. */
function showNotFound(input: string): ApiError {
  const name = tenantModelName(input);
  if (!name) return new ApiError(400, OllamaError.invalidModelName);
  return new ApiError(404, `model '${name.display}' not found`);
}

export async function showModel(env: Env, tenantId: string, request: ShowRequest): Promise<ShowResponse> {
  const model = await loadModel(env, tenantId, request.model, showNotFound);
  const { weightsLayer, texts, summary, projector, capabilities } = await describeModelLayers(env, model);
  const configText = await layerText(env, model, model.manifest.config).catch(() => null);
  const template = texts.template ?? summary?.chat_template ?? DEFAULT_TEMPLATE;
  const system = request.system || texts.system;
  const messages = texts.messages.map((m) => ({ role: String(m.role ?? ""), content: String(m.content ?? "") }));
  const modelfileParams = { ...texts.params, ...(request.options ?? {}) };

  const response: ShowResponse = { model_info: {} };
  if (texts.licenses.length > 0) response.license = texts.licenses.join("\n");
  response.modelfile = renderModelfile(model, {
    template,
    system,
    params: modelfileParams,
    licenses: texts.licenses,
    messages,
  });
  const parameters = formatParameters(sortedKeys(texts.params) as Options);
  if (parameters) response.parameters = parameters;
  response.template = template;
  if (system) response.system = system;
  response.details = detailsFromConfig(configText, weightsLayer?.from ?? "");
  if (messages.length > 0) response.messages = messages;
  if (request.verbose && weightsLayer) {
    const verbose = await verboseInfo(env, weightsLayer.digest, weightsLayer.size);
    response.model_info = verbose.model_info;
    response.tensors = verbose.tensors;
  } else {
    response.model_info = summary?.model_info ?? {};
  }
  if (projector) response.projector_info = projector.model_info;
  response.capabilities = capabilities;
  response.modified_at = new Date(model.modified_at).toISOString();
  return response;
}
