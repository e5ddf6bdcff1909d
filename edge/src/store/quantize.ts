/**
 * `quantize` in `/api/create`: the weights are rewritten by llama.cpp's quantizer on a runner (the edge has no
 * native code), which stores the result in the blob store and reports its digest. Types and texts are Ollama's
 * (fs/ggml ParseFileType, server/create.go).
 */
import { ApiError } from "@corral/protocol";
import { QUANTIZE_FILE_TYPES, type QuantizeFileType, type QuantizeJobRequest } from "@corral/protocol/runner";
import type { ProgressResponse } from "@corral/protocol/types";
import type { Env } from "../env";
import { runRunnerJob } from "./runner-jobs";

/** The order Ollama lists them in its error text. */
const LISTED_TYPES: readonly QuantizeFileType[] = ["F32", "F16", "Q4_K_S", "Q4_K_M", "Q8_0"];
const QUANTIZABLE_SOURCES = new Set(["F16", "BF16", "F32"]);
/** Ollama's placeholder digest on quantize progress lines. */
const PROGRESS_DIGEST = "0000000000000000000";
/**
 * Bytes per weight of each target, to estimate the result's size before the job (the storage quota is checked with
 * it up front; the real size is checked again before commit). K-quants mix types; these are their usual averages.
 */
const BYTES_PER_WEIGHT: Record<string, number> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  Q8_0: 34 / 32,
  Q4_K_M: 0.61,
  Q4_K_S: 0.57,
};

export interface QuantizeStep {
  fileType: QuantizeFileType;
  /** The type as the client wrote it, upper-cased (Ollama's progress text shows `Q4_K` for `q4_K`). */
  label: string;
  source: { digest: string; size: number };
  /** The source's quantization level (F16, BF16, F32), for the progress text. */
  sourceType: string;
}

/** The result's size, roughly: the source's weights at the target's bytes per weight. */
export function estimateQuantizedSize(step: QuantizeStep): number {
  const ratio = (BYTES_PER_WEIGHT[step.fileType] ?? 2) / (BYTES_PER_WEIGHT[step.sourceType] ?? 2);
  return Math.ceil(step.source.size * ratio);
}

/** Ollama's ParseFileType: case-insensitive, `Q4_K` means Q4_K_M. */
export function parseQuantizeType(input: string): QuantizeFileType {
  const upper = input.toUpperCase();
  const name = upper === "Q4_K" ? "Q4_K_M" : upper;
  if (Object.hasOwn(QUANTIZE_FILE_TYPES, name)) return name as QuantizeFileType;
  throw new ApiError(400, `unsupported quantization type ${upper} - supported types are ${LISTED_TYPES.join(", ")}`);
}

/** The quantize step a create needs, or null when the weights already have the wanted type (Ollama skips it). */
export function planQuantize(
  requested: string | undefined,
  weights: { digest: string; size: number },
  sourceType: string,
): QuantizeStep | null {
  if (!requested) return null;
  const fileType = parseQuantizeType(requested);
  if (!QUANTIZABLE_SOURCES.has(sourceType)) {
    throw new ApiError(400, "quantization is only supported for F16, BF16 and F32 models");
  }
  if (sourceType === fileType) return null;
  return { fileType, label: requested.toUpperCase(), source: weights, sourceType };
}

/** Runs the job on a runner (runner-jobs.ts), relaying its progress as Ollama's `quantizing F16 model to Q4_K_M`. */
export function runQuantizeJob(
  env: Env,
  step: QuantizeStep,
  signal: AbortSignal,
): AsyncGenerator<ProgressResponse, { digest: string; size: number }> {
  const status = `quantizing ${step.sourceType} model to ${step.label}`;
  const total = step.source.size;
  const body: QuantizeJobRequest = { request_id: crypto.randomUUID(), source: step.source, file_type: step.fileType };
  let completed = 0;
  return runRunnerJob(
    env,
    {
      kind: "quantize",
      body,
      line: (event) => {
        if (event.phase === "quantize" && event.total > 0) {
          completed = Math.min(total, Math.floor((event.completed / event.total) * total));
        }
        return event.phase === "upload"
          ? { status: "verifying conversion" }
          : { status, digest: PROGRESS_DIGEST, total, completed };
      },
    },
    signal,
  );
}
