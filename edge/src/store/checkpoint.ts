/**
 * Creating from a Hugging Face checkpoint (Ollama's "create from a Safetensors directory"): the `files` map names
 * config.json, the tokenizer files and the safetensors shards. Before anything runs, the edge checks what it cheaply
 * can with ranged reads (config.json, the index, every shard's header: bounds, dtypes, shapes, each tensor the
 * architecture needs), so bad input is a 400 that changed nothing. A runner then converts the files to one GGUF
 * (runner-jobs.ts, `/v1/convert`), which becomes the model's weights layer.
 */
import { ApiError } from "@corral/protocol";
import {
  type CheckpointPlan,
  type GgufArchitecture,
  planCheckpoint,
  readsSentencePiece,
} from "@corral/protocol/checkpoint";
import { isBertPoolingFile } from "@corral/protocol/checkpoint-bert";
import type { ConvertJobRequest } from "@corral/protocol/runner";
import { parseSafetensorsHeader, type SafetensorsHeader, safetensorsHeaderLength } from "@corral/protocol/safetensors";
import { MAX_TOKENIZER_MODEL_BYTES, readSentencePiece } from "@corral/protocol/sentencepiece";
import type { ProgressResponse } from "@corral/protocol/types";
import { blobRows, visibleDigests } from "../db/blobs";
import type { Env } from "../env";
import type { GgufSummary } from "./gguf";
import { MediaType } from "./manifest";
import { runRunnerJob } from "./runner-jobs";
import { blobKey, r2ByteSource } from "./store";

/**
 * The files a conversion reads besides the shards; anything else in `files` (README.md, special_tokens_map.json,
 * ...) is not sent to the runner.
 */
const CHECKPOINT_FILES = new Set([
  "added_tokens.json",
  "config.json",
  "generation_config.json",
  "model.safetensors.index.json",
  "tokenizer.json",
  "tokenizer.model",
  "tokenizer_config.json",
]);
const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_INDEX_BYTES = 16 * 1024 * 1024;

export interface ConvertStep {
  files: ConvertJobRequest["files"];
  /** The GGUF architecture the weights convert to. */
  architecture: string;
  /** The converted file's size, roughly (F32 matrices halve, vectors go to F32, plus the tokenizer). */
  estimatedSize: number;
}

/**
 * Whether `files` is a safetensors checkpoint (Ollama's detectModelTypeFromFiles: by the `.safetensors` and `.gguf`
 * names; both at once is an error).
 */
export function isCheckpoint(files: readonly [string, string][]): boolean {
  const safetensors = files.some(([name]) => name.endsWith(".safetensors"));
  if (safetensors && files.some(([name]) => name.endsWith(".gguf"))) {
    throw new ApiError(400, "mixed model file types: found both gguf and safetensors inputs");
  }
  return safetensors;
}

/** Checks a checkpoint's files and plans its conversion. */
export async function planConvert(
  env: Env,
  tenantId: string,
  files: readonly [string, string][],
): Promise<ConvertStep> {
  const used = files.filter(
    ([name]) => name.endsWith(".safetensors") || CHECKPOINT_FILES.has(name) || isBertPoolingFile(name),
  );
  const sized = await visibleFiles(env, tenantId, used);
  const byName = new Map(sized.map((f) => [f.name, f]));
  const config = byName.get("config.json");
  if (!config) throw new ApiError(400, "config.json is required to convert a safetensors model");
  const index = byName.get("model.safetensors.index.json");
  const headers = new Map<string, SafetensorsHeader>();
  for (const f of sized) if (f.name.endsWith(".safetensors")) headers.set(f.name, await readShardHeader(env, f));
  const plan = planCheckpoint(
    await readText(env, config, MAX_CONFIG_BYTES),
    index ? await readText(env, index, MAX_INDEX_BYTES) : undefined,
    headers,
  );
  const tokenizer = await checkTokenizer(env, plan.config.arch, byName);
  return { files: sized, architecture: plan.config.arch, estimatedSize: estimate(plan) + tokenizer.size };
}

/**
 * The tokenizer file the architecture's converter reads (protocol's readsSentencePiece) must be there; a
 * SentencePiece tokenizer.model is read whole and parsed, so a malformed one is a 400 before any runner work.
 */
async function checkTokenizer(env: Env, arch: GgufArchitecture, byName: ReadonlyMap<string, ShardFile>) {
  const name = readsSentencePiece(arch, byName.has("tokenizer.model"), byName.has("tokenizer.json"))
    ? "tokenizer.model"
    : "tokenizer.json";
  const file = byName.get(name);
  if (!file) throw new ApiError(400, `${name} is required to convert a safetensors model`);
  if (name === "tokenizer.model") readSentencePiece(await readBytes(env, file, MAX_TOKENIZER_MODEL_BYTES));
  return file;
}

/** Each file's blob with its size; every one must be a blob the tenant can see. */
export async function visibleFiles(
  env: Env,
  tenantId: string,
  files: readonly [string, string][],
): Promise<ConvertStep["files"]> {
  const digests = files.map(([, d]) => d);
  const [visible, rows] = await Promise.all([visibleDigests(env.DB, tenantId, digests), blobRows(env.DB, digests)]);
  return files.map(([name, digest]) => {
    const row = rows.get(digest);
    if (!row || !visible.has(digest)) {
      throw new ApiError(400, `blob ${digest} not found: upload it with POST /api/blobs/${digest} first`);
    }
    return { name, digest, size: row.size };
  });
}

function estimate(plan: CheckpointPlan): number {
  return plan.tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1) * (t.shape.length > 1 ? 2 : 4), 0);
}

export async function readShardHeader(env: Env, file: ShardFile) {
  const source = r2ByteSource(env.BLOBS, blobKey(file.digest), file.size);
  const length = safetensorsHeaderLength(await source.read(0, 8), file.size, file.name);
  return parseSafetensorsHeader(await source.read(8, length), file.size, file.name);
}

type ShardFile = { name: string; digest: string; size: number };

export async function readText(env: Env, file: ShardFile, max: number): Promise<string> {
  return new TextDecoder().decode(await readBytes(env, file, max));
}

async function readBytes(env: Env, file: ShardFile, max: number): Promise<Uint8Array> {
  if (file.size > max) throw new ApiError(400, `${file.name} is ${file.size} bytes, over the limit of ${max}`);
  const object = await env.BLOBS.get(blobKey(file.digest));
  if (!object) throw new ApiError(500, `blob ${file.digest} is missing from the bucket`);
  return new Uint8Array(await object.arrayBuffer());
}

/**
 * Stands in for the weights' summary until the runner has converted them (the plan's config and statuses are
 * rebuilt from the real file's header then, before anything is written).
 */
export function pendingWeights(step: ConvertStep): GgufSummary {
  return {
    mediaType: MediaType.model,
    format: "gguf",
    family: step.architecture,
    parameter_size: "",
    quantization_level: "F16",
    model_info: {},
    pooling: false,
    vision: false,
  };
}

/** Runs the conversion on a runner: Ollama's `converting model` line while it works. */
export function runConvertJob(
  env: Env,
  step: ConvertStep,
  signal: AbortSignal,
): AsyncGenerator<ProgressResponse, { digest: string; size: number }> {
  const body: ConvertJobRequest = { request_id: crypto.randomUUID(), files: step.files };
  return runRunnerJob(
    env,
    {
      kind: "convert",
      body,
      line: (event) => (event.phase === "upload" ? { status: "verifying conversion" } : { status: "converting model" }),
    },
    signal,
  );
}
