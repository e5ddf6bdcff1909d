/**
 * `quantize` in `/api/create`: the weights are rewritten by llama.cpp's quantizer on a runner (the edge has no
 * native code), which stores the result in the blob store and reports its digest. Types and texts are Ollama's
 * (fs/ggml ParseFileType, server/create.go).
 */
import { ApiError } from "@corral/protocol";
import { readNdjson } from "@corral/protocol/ndjson";
import {
  QUANTIZE_FILE_TYPES,
  type QuantizeFileType,
  QuantizeJobEventSchema,
  type QuantizeJobRequest,
} from "@corral/protocol/runner";
import type { ProgressResponse } from "@corral/protocol/types";
import type { Env } from "../env";
import { schedulerStub } from "../scheduler/client";

/** The order Ollama lists them in its error text. */
const LISTED_TYPES: readonly QuantizeFileType[] = ["F32", "F16", "Q4_K_S", "Q4_K_M", "Q8_0"];
const QUANTIZABLE_SOURCES = new Set(["F16", "BF16", "F32"]);
/** Ollama's placeholder digest on quantize progress lines. */
const PROGRESS_DIGEST = "0000000000000000000";
/** Runners tried before giving up when they refuse (draining) or cannot be reached. */
const MAX_ATTEMPTS = 3;

export interface QuantizeStep {
  fileType: QuantizeFileType;
  source: { digest: string; size: number };
  /** The source's quantization level (F16, BF16, F32), for the progress text. */
  sourceType: string;
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
  return { fileType, source: weights, sourceType };
}

/**
 * Runs the job on a runner and relays its progress as Ollama's `quantizing F16 model to Q4_K_M` lines; returns
 * the stored result. A runner that refuses or cannot be reached before its first line is replaced by another;
 * a failure after that ends the create (the job's partial output never becomes a blob).
 */
export async function* runQuantizeJob(
  env: Env,
  step: QuantizeStep,
  signal: AbortSignal,
): AsyncGenerator<ProgressResponse, { digest: string; size: number }> {
  const status = `quantizing ${step.sourceType} model to ${step.fileType}`;
  const request: QuantizeJobRequest = {
    request_id: crypto.randomUUID(),
    source: step.source,
    file_type: step.fileType,
  };
  const tried: string[] = [];
  let lastFailure = "no runner is available";
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const runner = await schedulerStub(env).jobRunner(tried);
    if (!runner) break;
    tried.push(runner.id);
    let response: Response;
    try {
      response = await fetch(`${runner.url.replace(/\/+$/, "")}/v1/quantize`, {
        method: "POST",
        headers: { authorization: `Bearer ${env.RUNNER_SECRET ?? ""}`, "content-type": "application/json" },
        body: JSON.stringify(request),
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw new ApiError(499, "quantize cancelled");
      lastFailure = `runner ${runner.id} unreachable: ${err instanceof Error ? err.message : String(err)}`;
      continue;
    }
    if (response.status === 503 || response.status === 429) {
      await response.body?.cancel().catch(() => {});
      lastFailure = `runner ${runner.id} is busy`;
      continue;
    }
    if (!response.ok || !response.body) throw await runnerError(response);
    return yield* relayJob(response.body, status, step.source.size);
  }
  throw new ApiError(503, `cannot quantize right now (${lastFailure}), please try again`);
}

async function* relayJob(
  body: ReadableStream<Uint8Array>,
  status: string,
  total: number,
): AsyncGenerator<ProgressResponse, { digest: string; size: number }> {
  let verifying = false;
  for await (const line of readNdjson(body)) {
    const parsed = QuantizeJobEventSchema.safeParse(line);
    if (!parsed.success) throw new ApiError(502, "runner sent an invalid quantize event");
    const event = parsed.data;
    if (event.event === "error") throw new ApiError(event.status ?? 500, event.error);
    if (event.event === "done") return { digest: event.digest, size: event.size };
    if (event.phase === "quantize" && event.total > 0) {
      const completed = Math.min(total, Math.floor((event.completed / event.total) * total));
      yield { status, digest: PROGRESS_DIGEST, total, completed };
    } else if (event.phase === "upload" && !verifying) {
      verifying = true;
      yield { status: "verifying conversion" };
    }
  }
  throw new ApiError(502, "the runner ended the quantize job without a result");
}

async function runnerError(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  let message = `runner answered ${response.status}`;
  try {
    const body = JSON.parse(text) as { error?: unknown };
    if (typeof body.error === "string") message = body.error;
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(response.status >= 400 && response.status < 600 ? response.status : 502, message);
}
