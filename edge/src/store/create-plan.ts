/**
 * Planning a create: every check and every read happens here, before a byte is written or a progress line is
 * sent, so any bad input (name, digest, blob, GGUF header, template, parameter) is a plain 4xx that changed
 * nothing. The plan then holds the exact layers, blobs and manifest that commit (create.ts) writes.
 */
import { ApiError, type Options } from "@corral/protocol";
import { digestOf } from "@corral/protocol/digest";
import type { CreateRequest } from "@corral/protocol/schemas-models";
import { assertStorageQuota, blobRows, pinForWriteOrWait, unpin, visibleDigests } from "../db/blobs";
import type { Env } from "../env";
import { type AdapterStep, planAdapterConvert } from "./adapter";
import { type ConvertStep, isCheckpoint, pendingWeights, planConvert } from "./checkpoint";
import { type CreateSource, createSource } from "./create-source";
import { cachedSummary, type GgufSummary, readHeader, summarise } from "./gguf";
import {
  CONFIG_MEDIA_TYPE,
  configJson,
  type EncodedManifest,
  encodeManifest,
  GGUF_MEDIA_TYPES,
  goJson,
  type Layer,
  MediaType,
  manifestDigests,
  sortedKeys,
} from "./manifest";
import type { TenantModelName } from "./names";
import { requireModelName } from "./names";
import { estimateQuantizedSize, parseQuantizeType, planQuantize, type QuantizeStep } from "./quantize";
import { layerText, loadModel } from "./resolve";
import { checkGoTemplate } from "./template";

/** A small layer created from request text: stored in R2 and inline in D1. */
export interface NewBlob {
  digest: string;
  size: number;
  content: string;
}

export interface CreatePlan {
  tenantId: string;
  /** Holder of the write pins taken while planning; commit releases them with its final batch. */
  holder: string;
  name: TenantModelName;
  /** One "parsing GGUF" line per GGUF file named by the request. */
  parsedFiles: number;
  layers: Layer[];
  /** Progress line per layer, in layer order. */
  statuses: string[];
  config: Layer;
  newBlobs: NewBlob[];
  /** Header summaries read for the first time, to cache on commit. */
  summaries: Map<string, GgufSummary>;
  manifest: EncodedManifest;
  /** Summary of the weights layer (for config, tags and show). */
  weights: GgufSummary;
  /** Weights to rewrite on a runner before commit (`quantize`); commit replaces the weights layer with the result. */
  quantize: QuantizeStep | null;
  /**
   * A safetensors checkpoint to convert on a runner before commit (and then quantize, when asked): until then the
   * weights layer and summary are placeholders (checkpoint.ts pendingWeights).
   */
  convert: { step: ConvertStep; quantize?: string } | null;
  /** A safetensors LoRA adapter to convert on a runner before commit; until then its layer is a placeholder. */
  adapter: AdapterStep | null;
  /** Blobs a runner produced for this create: the tenant owns them once the model is written. */
  produced: { digest: string; size: number }[];
}

interface Draft {
  layer: Layer;
  status: string;
  summary?: GgufSummary;
}

const encoder = new TextEncoder();

/**
 * Plans a create. The blobs it names are pinned first thing (before their visibility is even checked), so a
 * delete running at the same time cannot release or collect them from under it; on failure the pins go.
 */
export async function planCreate(env: Env, tenantId: string, request: CreateRequest): Promise<CreatePlan> {
  if (request.quantize) parseQuantizeType(request.quantize);
  const name = requireModelName(request.model);
  const source = createSource(request);
  const holder = `create-${crypto.randomUUID()}`;
  try {
    return await plan(env, tenantId, name, source, holder, request.quantize);
  } catch (err) {
    await unpin(env.DB, holder);
    throw err;
  }
}

async function plan(
  env: Env,
  tenantId: string,
  name: TenantModelName,
  source: CreateSource,
  holder: string,
  quantize: string | undefined,
): Promise<CreatePlan> {
  await pinForWriteOrWait(
    env.DB,
    [...source.files, ...source.adapters].map(([, d]) => d),
    holder,
  );
  const summaries = new Map<string, GgufSummary>();
  const drafts: Draft[] = [];
  let baseParams: Options = {};
  let convert: ConvertStep | null = null;
  if (source.from && isCheckpoint(source.files)) {
    throw new ApiError(400, "safetensors imports do not support FROM model overlays");
  }
  if (source.adapters.length > 0 && isCheckpoint(source.files)) {
    throw new ApiError(400, "safetensors imports do not support adapters");
  }
  if (source.from) {
    const base = await loadModel(env, tenantId, source.from.input);
    await pinForWriteOrWait(env.DB, manifestDigests(base.manifest), holder);
    const from = base.display_name;
    const rows = await blobRows(
      env.DB,
      base.manifest.layers.map((l) => l.digest),
    );
    for (const l of base.manifest.layers) {
      const layer: Layer = { mediaType: l.mediaType, digest: l.digest, size: l.size, from };
      if (l.name) layer.name = l.name;
      const draft: Draft = { layer, status: `using existing layer ${l.digest}` };
      if (GGUF_MEDIA_TYPES.has(l.mediaType)) draft.summary = await summaryOf(env, l.digest, l.size, rows, summaries);
      if (l.mediaType === MediaType.params) baseParams = parseParams(await layerText(env, base, l));
      drafts.push(draft);
    }
  } else if (isCheckpoint(source.files)) {
    convert = await planConvert(env, tenantId, source.files);
    const layer: Layer = { mediaType: MediaType.model, digest: PENDING_DIGEST, size: 0 };
    drafts.push({ layer, status: "converting model", summary: pendingWeights(convert) });
  } else {
    drafts.push(...(await ggufDrafts(env, tenantId, source.files, null, summaries)));
  }
  const safetensorsAdapter = isCheckpoint(source.adapters);
  if (!safetensorsAdapter)
    drafts.push(...(await ggufDrafts(env, tenantId, source.adapters, MediaType.adapter, summaries)));

  const models = drafts.filter((d) => d.layer.mediaType === MediaType.model);
  if (models.length === 0)
    throw new ApiError(400, "no model weights: the GGUF files hold no model (only adapters or projectors)");
  if (models.length > 1) throw new ApiError(400, "only one model GGUF is supported per model");
  const weights = models[0]!.summary!;
  for (const d of drafts) if (d.layer.mediaType === MediaType.projector) assertProjectorFits(d.summary, weights);
  const adapter = safetensorsAdapter
    ? await planAdapterConvert(env, tenantId, source.adapters, models[0]!.layer)
    : null;
  if (adapter) {
    drafts.push({
      layer: { mediaType: MediaType.adapter, digest: PENDING_DIGEST, size: 0 },
      status: "converting adapter",
    });
    await assertStorageQuota(env.DB, tenantId, "adapter:pending", adapter.estimatedSize);
  }
  // A checkpoint is quantized once converted; its quota check goes by the converted size's estimate.
  const quantizeStep = convert ? null : planQuantize(quantize, models[0]!.layer, weights.quantization_level);
  // Refused before the runner spends minutes on it: the result's size estimated from the source's.
  if (quantizeStep) await assertStorageQuota(env.DB, tenantId, "quantize:pending", estimateQuantizedSize(quantizeStep));
  if (convert) await assertStorageQuota(env.DB, tenantId, "convert:pending", convertedSize(convert, quantize));

  const newBlobs: NewBlob[] = [];
  const textLayers = await textDrafts(env, tenantId, drafts, source, baseParams, newBlobs);

  const configLayer = configFor(weights, newBlobs);
  const layers = textLayers.map((d) => d.layer);
  return {
    tenantId,
    holder,
    name,
    parsedFiles: source.from || convert ? 0 : source.files.length + (adapter ? 0 : source.adapters.length),
    layers,
    statuses: textLayers.map((d) => d.status),
    config: configLayer,
    newBlobs,
    summaries,
    manifest: encodeManifest(configLayer, layers),
    weights,
    quantize: quantizeStep,
    convert: convert ? { step: convert, quantize } : null,
    adapter,
    produced: [],
  };
}

/**
 * llama.cpp refuses to load a projector whose embeddings are not the text model's width; refusing it here keeps
 * such a model from being stored at all (the runner's load still checks, for summaries cached before this).
 */
function assertProjectorFits(projector: GgufSummary | undefined, weights: GgufSummary): void {
  const width = projector?.projector_width;
  const embedding = weights.embedding_length;
  if (width === undefined || embedding === undefined || width === embedding) return;
  throw new ApiError(
    400,
    `vision projector mismatch: the projector produces ${width}-wide embeddings, the model's embedding_length is ${embedding}`,
  );
}

/** Stands in for the converted weights' (or adapter's) digest in the plan until a runner has produced them. */
const PENDING_DIGEST = `sha256:${"0".repeat(64)}`;

/** The model's weights size once converted (and quantized, when asked), estimated. */
function convertedSize(step: ConvertStep, quantize: string | undefined): number {
  const source = { digest: PENDING_DIGEST, size: step.estimatedSize };
  const quantized = quantize ? planQuantize(quantize, source, "F16") : null;
  return quantized ? estimateQuantizedSize(quantized) : step.estimatedSize;
}

/** The plan once a runner has converted the checkpoint: its GGUF is the weights; `quantize` is planned on it now. */
export function withConvertedWeights(
  plan: CreatePlan,
  produced: { digest: string; size: number },
  summary: GgufSummary,
  alreadyVisible: boolean,
): CreatePlan {
  const next = withQuantizedWeights(plan, produced, summary, alreadyVisible);
  const quantize = planQuantize(plan.convert?.quantize, produced, summary.quantization_level);
  return { ...next, convert: null, quantize };
}

/** The plan once a runner has converted the safetensors adapter: its GGUF is the adapter layer. */
export function withConvertedAdapter(
  plan: CreatePlan,
  produced: { digest: string; size: number },
  summary: GgufSummary,
  alreadyVisible: boolean,
): CreatePlan {
  // The placeholder only: a base model's own adapter layers stay as they are.
  const isAdapter = (l: Layer) => l.mediaType === MediaType.adapter && l.digest === PENDING_DIGEST;
  const layers = plan.layers.map((l) =>
    isAdapter(l) ? { mediaType: l.mediaType, digest: produced.digest, size: produced.size } : l,
  );
  const statuses = plan.statuses.map((s, i) =>
    isAdapter(plan.layers[i]!) ? `${alreadyVisible ? "using existing" : "creating new"} layer ${produced.digest}` : s,
  );
  return {
    ...plan,
    layers,
    statuses,
    summaries: new Map(plan.summaries).set(produced.digest, summary),
    manifest: encodeManifest(plan.config, layers),
    adapter: null,
    produced: [...plan.produced, produced],
  };
}

/** The config blob (Ollama's ConfigV2) for these weights, added to `newBlobs`. */
function configFor(weights: GgufSummary, newBlobs: NewBlob[]): Layer {
  const text = configJson({
    model_format: "gguf",
    model_family: weights.family,
    model_families: [weights.family],
    model_type: weights.parameter_size,
    file_type: weights.quantization_level,
    architecture: "amd64",
    os: "linux",
  });
  const config = newBlob(text, newBlobs);
  return { mediaType: CONFIG_MEDIA_TYPE, digest: config.digest, size: config.size };
}

/** The plan once a runner has quantized its weights: the new blob replaces the weights layer, config follows. */
export function withQuantizedWeights(
  plan: CreatePlan,
  produced: { digest: string; size: number },
  summary: GgufSummary,
  alreadyVisible: boolean,
): CreatePlan {
  const isWeights = (l: Layer) => l.mediaType === MediaType.model;
  const layers = plan.layers.map((l) =>
    isWeights(l) ? { mediaType: l.mediaType, digest: produced.digest, size: produced.size } : l,
  );
  const statuses = plan.statuses.map((s, i) =>
    isWeights(plan.layers[i]!) ? `${alreadyVisible ? "using existing" : "creating new"} layer ${produced.digest}` : s,
  );
  const newBlobs = plan.newBlobs.filter(
    (b) => b.digest !== plan.config.digest || layers.some((l) => l.digest === b.digest),
  );
  const config = configFor(summary, newBlobs);
  const summaries = new Map(plan.summaries).set(produced.digest, summary);
  return {
    ...plan,
    layers,
    statuses,
    config,
    newBlobs,
    summaries,
    manifest: encodeManifest(config, layers),
    weights: summary,
    quantize: null,
    // A blob produced earlier whose layer this one replaces (a converted file now quantized) stays ownerless: the
    // GC collects it.
    produced: [...plan.produced.filter((b) => layers.some((l) => l.digest === b.digest)), produced],
  };
}

async function summaryOf(
  env: Env,
  digest: string,
  size: number,
  rows: Map<string, { gguf: string | null }>,
  fresh: Map<string, GgufSummary>,
): Promise<GgufSummary> {
  const cached = cachedSummary(rows.get(digest)?.gguf ?? null) ?? fresh.get(digest);
  if (cached) return cached;
  const summary = summarise(await readHeader(env, digest, size));
  fresh.set(digest, summary);
  return summary;
}

/** GGUF files named by digest: each must be a blob the tenant can see and a valid GGUF. */
async function ggufDrafts(
  env: Env,
  tenantId: string,
  files: [string, string][],
  forcedType: string | null,
  fresh: Map<string, GgufSummary>,
): Promise<Draft[]> {
  const digests = files.map(([, d]) => d);
  const [visible, rows] = await Promise.all([visibleDigests(env.DB, tenantId, digests), blobRows(env.DB, digests)]);
  const drafts: Draft[] = [];
  for (const [fileName, digest] of files) {
    const row = rows.get(digest);
    if (!row || !visible.has(digest)) {
      throw new ApiError(400, `blob ${digest} not found: upload it with POST /api/blobs/${digest} first`);
    }
    const summary = await summaryOf(env, digest, row.size, rows, fresh);
    const layer: Layer = { mediaType: forcedType ?? summary.mediaType, digest, size: row.size };
    if (fileName) layer.from = fileName;
    drafts.push({ layer, status: `using existing layer ${digest}`, summary });
  }
  return drafts;
}

function newBlob(content: string, newBlobs: NewBlob[]): NewBlob {
  const bytes = encoder.encode(content);
  const blob = { digest: digestOf(bytes), size: bytes.length, content };
  if (!newBlobs.some((b) => b.digest === blob.digest)) newBlobs.push(blob);
  return blob;
}

/** Ollama's setTemplate/setSystem/setLicense/setParameters/setMessages, in that order, over the base layers. */
async function textDrafts(
  env: Env,
  tenantId: string,
  base: Draft[],
  source: CreateSource,
  baseParams: Options,
  newBlobs: NewBlob[],
): Promise<Draft[]> {
  let drafts = [...base];
  const add = (mediaType: string, content: string, replace: boolean) => {
    if (replace) drafts = drafts.filter((d) => d.layer.mediaType !== mediaType);
    const blob = newBlob(content, newBlobs);
    drafts.push({ layer: { mediaType, digest: blob.digest, size: blob.size }, status: "" });
  };

  if (source.template) {
    checkGoTemplate(source.template);
    add(MediaType.template, source.template, true);
  }
  if (source.system) add(MediaType.system, source.system, true);
  for (const license of source.licenses) add(MediaType.license, license, false);
  const params = { ...baseParams, ...source.parameters } as Record<string, unknown>;
  if (Object.keys(params).length > 0) add(MediaType.params, goJson(sortedKeys(params)), true);
  if (source.messages.length > 0) add(MediaType.messages, goJson(source.messages), true);

  // "using existing" only for content this tenant can already see: anything else would reveal other tenants' text.
  const fresh = drafts.filter((d) => !d.status).map((d) => d.layer.digest);
  const visible = await visibleDigests(env.DB, tenantId, fresh);
  return drafts.map((d) => {
    if (d.status) return d;
    const verb = visible.has(d.layer.digest) ? "using existing layer" : "creating new layer";
    return { ...d, status: `${verb} ${d.layer.digest}` };
  });
}

function parseParams(text: string): Options {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === "object" && !Array.isArray(value) ? (value as Options) : {};
  } catch {
    return {};
  }
}
