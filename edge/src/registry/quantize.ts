/**
 * `quantize` in `/api/create`: the weights are rewritten by llama.cpp's quantizer on a runner (the edge has no
 * native code), which stores the result in the blob store and reports its digest. Types and texts are Ollama's
 * (fs/ggml ParseFileType, server/create.go).
 */
import { ApiError } from "@corral/protocol";
import { parseDigest } from "@corral/protocol/digest";
import { readNdjson } from "@corral/protocol/ndjson";
import {
  QUANTIZE_FILE_TYPES,
  type QuantizeFileType,
  QuantizeJobEventSchema,
  type QuantizeJobRequest,
} from "@corral/protocol/runner";
import type { ProgressResponse } from "@corral/protocol/types";
import type { Env } from "../env";
import { ollamaErrorOf } from "../errors";
import { schedulerStub } from "../scheduler/client";

/** The order Ollama lists them in its error text. */
const LISTED_TYPES: readonly QuantizeFileType[] = ["F32", "F16", "Q4_K_S", "Q4_K_M", "Q8_0"];
const QUANTIZABLE_SOURCES = new Set(["F16", "BF16", "F32"]);
/** Ollama's placeholder digest on quantize progress lines. */
const PROGRESS_DIGEST = "0000000000000000000";
/** Passes over the fleet while every runner is busy with another job, and the pause before each retry. */
const BUSY_RETRY_DELAYS_MS = [0, 1_000, 3_000, 8_000];
/** A status line at least this often while the runner works silently (download, hashing, upload). */
const KEEPALIVE_MS = 2_000;
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

/**
 * Runs the job on a runner and relays its progress as Ollama's `quantizing F16 model to Q4_K_M` lines; returns
 * the stored result. A runner that refuses (busy with another job, draining, not able to store results) or cannot be
 * reached before its first line is replaced by another, and while every runner is busy the job waits a little; a
 * failure after the first line ends the create (the job's partial output never becomes a model).
 */
export async function* runQuantizeJob(
  env: Env,
  step: QuantizeStep,
  signal: AbortSignal,
): AsyncGenerator<ProgressResponse, { digest: string; size: number }> {
  const status = `quantizing ${step.sourceType} model to ${step.label}`;
  const request: QuantizeJobRequest = {
    request_id: crypto.randomUUID(),
    source: step.source,
    file_type: step.fileType,
  };
  let lastFailure = "no runner is available";
  for (const delay of BUSY_RETRY_DELAYS_MS) {
    if (delay > 0) await abortableDelay(delay, signal);
    const tried: string[] = [];
    // Only a runner busy with another job is worth waiting for; none at all, or none able, is an answer now.
    let sawBusy = false;
    for (;;) {
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
      if (response.ok && response.body) return yield* relayJob(response.body, status, step.source.size);
      const failure = await runnerError(response);
      // Only a judgement on the job itself goes to the client; anything else is this runner's problem.
      if (response.status === 400) throw failure;
      sawBusy ||= response.status === 503 || response.status === 429;
      lastFailure = `runner ${runner.id}: ${failure.message}`;
    }
    if (!sawBusy) break;
  }
  throw new ApiError(503, `cannot quantize right now (${lastFailure}), please try again`);
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new ApiError(499, "quantize cancelled"));
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new ApiError(499, "quantize cancelled"));
      },
      { once: true },
    );
  });
}

async function* relayJob(
  body: ReadableStream<Uint8Array>,
  status: string,
  total: number,
): AsyncGenerator<ProgressResponse, { digest: string; size: number }> {
  let completed = 0;
  let last: ProgressResponse | undefined;
  let lastAt = 0;
  for await (const line of readNdjson(body)) {
    const parsed = QuantizeJobEventSchema.safeParse(line);
    if (!parsed.success) throw new ApiError(502, "runner sent an invalid quantize event");
    const event = parsed.data;
    if (event.event === "error") throw new ApiError(event.status ?? 500, event.error);
    if (event.event === "done") {
      const digest = parseDigest(event.digest);
      if (!digest) throw new ApiError(502, "runner reported an invalid digest");
      return { digest, size: event.size };
    }
    if (event.phase === "quantize" && event.total > 0) {
      completed = Math.min(total, Math.floor((event.completed / event.total) * total));
    }
    // While the runner downloads the source (before), or hashes and stores the result (after), the last line is
    // repeated now and then: the client sees the job is alive, and the create's pins get extended.
    const next: ProgressResponse =
      event.phase === "upload"
        ? { status: "verifying conversion" }
        : { status, digest: PROGRESS_DIGEST, total, completed };
    const now = Date.now();
    if (!last || last.status !== next.status || last.completed !== next.completed || now - lastAt >= KEEPALIVE_MS) {
      last = next;
      lastAt = now;
      yield next;
    }
  }
  throw new ApiError(502, "the runner ended the quantize job without a result");
}

async function runnerError(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  const message = ollamaErrorOf(text) ?? `runner answered ${response.status}`;
  return new ApiError(response.status >= 400 && response.status < 600 ? response.status : 502, message);
}
