/**
 * Creating with a PEFT LoRA adapter (`adapters` naming adapter_config.json and adapter_model.safetensors, as
 * `ollama create` sends an `ADAPTER ./dir`): the edge checks the adapter against the base model's GGUF header before
 * anything runs (protocol/checkpoint-lora.ts: known modules, rank, shapes, architecture), so a bad adapter is a 400
 * that changed nothing. A runner then converts it to a GGUF adapter (`/v1/convert` with `adapter_base`), which
 * becomes the model's adapter layer; inference applies it as any GGUF adapter.
 */
import { ApiError } from "@corral/protocol";
import { adapterBaseFromHeader, adapterBaseWire, planAdapter } from "@corral/protocol/checkpoint-lora";
import type { AdapterBaseWire, ConvertJobRequest } from "@corral/protocol/runner";
import type { ProgressResponse } from "@corral/protocol/types";
import type { Env } from "../env";
import { readShardHeader, readText, visibleFiles } from "./checkpoint";
import { readHeader } from "./gguf";
import { runRunnerJob } from "./runner-jobs";

const ADAPTER_CONFIG = "adapter_config.json";
const ADAPTER_WEIGHTS = "adapter_model.safetensors";
const MAX_CONFIG_BYTES = 1024 * 1024;

export interface AdapterStep {
  files: ConvertJobRequest["files"];
  base: AdapterBaseWire;
  /** The GGUF adapter's size, roughly: every LoRA tensor in F32. */
  estimatedSize: number;
}

/** Checks a safetensors adapter against the base weights (a GGUF blob) and plans its conversion. */
export async function planAdapterConvert(
  env: Env,
  tenantId: string,
  files: readonly [string, string][],
  base: { digest: string; size: number },
): Promise<AdapterStep> {
  for (const [name] of files) {
    if (name.endsWith(".safetensors") && name !== ADAPTER_WEIGHTS) {
      throw new ApiError(
        400,
        `unexpected adapter file ${name}: a LoRA adapter is ${ADAPTER_CONFIG} and ${ADAPTER_WEIGHTS}`,
      );
    }
  }
  const used = files.filter(([name]) => name === ADAPTER_CONFIG || name === ADAPTER_WEIGHTS);
  const sized = await visibleFiles(env, tenantId, used);
  const config = sized.find((f) => f.name === ADAPTER_CONFIG);
  if (!config) throw new ApiError(400, `${ADAPTER_CONFIG} is required to convert a safetensors adapter`);
  const weights = sized.find((f) => f.name === ADAPTER_WEIGHTS)!;
  const adapterBase = adapterBaseFromHeader(await readHeader(env, base.digest, base.size));
  const plan = planAdapter(
    await readText(env, config, MAX_CONFIG_BYTES),
    ADAPTER_WEIGHTS,
    (await readShardHeader(env, weights)).tensors,
    adapterBase,
  );
  const tensorBytes = plan.tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1) * 4, 0);
  return {
    files: sized,
    base: adapterBaseWire(adapterBase, plan),
    // Plus the header: names, dims and the four keys.
    estimatedSize: tensorBytes + plan.tensors.length * 128 + 1024,
  };
}

/** Runs the conversion on a runner: Ollama's `converting adapter` line while it works. */
export function runAdapterJob(
  env: Env,
  step: AdapterStep,
  signal: AbortSignal,
): AsyncGenerator<ProgressResponse, { digest: string; size: number }> {
  const body: ConvertJobRequest = { request_id: crypto.randomUUID(), files: step.files, adapter_base: step.base };
  return runRunnerJob(
    env,
    {
      kind: "convert",
      body,
      line: (event) =>
        event.phase === "upload" ? { status: "verifying conversion" } : { status: "converting adapter" },
    },
    signal,
  );
}
