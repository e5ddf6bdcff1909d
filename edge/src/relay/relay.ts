/**
 * The inference path: validate, admit (quotas), resolve the model, get a runner from the scheduler, forward, and
 * relay the runner's answer — streams byte for byte, metered on the way. A runner that fails before the client got
 * a byte is replaced (bounded attempts); after that the stream ends with an error line.
 */
import {
  ApiError,
  encodeNdjson,
  errorText,
  parseChatRequest,
  parseEmbeddingRequest,
  parseEmbedRequest,
  parseGenerateRequest,
} from "@corral/protocol";
import { type ResolvedModel, RUNNER_HEADER_REQUEST_ID, type RunnerInferenceRequest } from "@corral/protocol/runner";
import type { Context } from "hono";
import { readBody } from "../body";
import { checkInferenceBounds, type InferenceRequest } from "../bounds";
import type { AppBindings } from "../env";
import { ndjsonErrorLine } from "../errors";
import type { Grant, ReleaseOutcome } from "../scheduler/types";
import { resolveModel } from "../store/resolve";
import { cancelledError, RETRYABLE_RUNNER_STATUSES, runnersFailedError, tooManyRequests } from "./failures";
import { acquireLease, estimateModelBytes } from "./lease";
import { StreamMeter, usageOfJson, zeroUsage } from "./meter";
import { type Endpoint, InferenceRun } from "./run";
import { fetchRunner } from "./transport";

/** Attempts per request: the first runner plus retries on others after failures before the first byte. */
export const MAX_ATTEMPTS = 3;

const PARSERS: Record<Endpoint, (body: unknown) => InferenceRequest> = {
  generate: parseGenerateRequest,
  chat: parseChatRequest,
  embed: parseEmbedRequest,
  embeddings: parseEmbeddingRequest,
};

const NDJSON = "application/x-ndjson";
const JSON_UTF8 = "application/json; charset=utf-8";

export async function relayInference(c: Context<AppBindings>, endpoint: Endpoint): Promise<Response> {
  const body = await readBody(c);
  const request = PARSERS[endpoint](body);
  const run = new InferenceRun(
    { env: c.env, waitUntil: (p) => c.executionCtx.waitUntil(p) },
    {
      tenantId: c.get("tenantId"),
      keyId: c.get("keyId") ?? null,
      endpoint,
      model: request.model,
      quotas: c.get("quotas"),
    },
  );
  c.executionCtx.waitUntil(run.settled);

  // Quotas and the model name are independent lookups: do both at once to keep the time to first token short.
  const [permit, resolved] = await Promise.allSettled([
    run.admit(),
    resolveModel(c.env, run.info.tenantId, request.model),
  ]);
  if (permit.status === "fulfilled" && !permit.value.ok) {
    run.abandon();
    throw tooManyRequests(permit.value);
  }
  if (permit.status === "rejected" || resolved.status === "rejected") {
    run.abandon();
    throw permit.status === "rejected" ? permit.reason : (resolved as PromiseRejectedResult).reason;
  }
  const { model, shape } = resolved.value;
  run.modelDigest = model.digest;
  // Every tenant-controlled number is bounded before anything is scheduled (the options the runner will use:
  // the model's defaults with the request's over them).
  const options = { ...model.params, ...(request.options ?? {}) };
  try {
    const bounded = checkInferenceBounds(request, options, c.get("limits"), shape?.context_length);
    if (bounded.keepAlive !== undefined) (body as Record<string, unknown>).keep_alive = bounded.keepAlive;
  } catch (err) {
    run.abandon();
    throw err;
  }

  // One signal for the whole request: the client going away aborts the wait, the upstream fetch and the relay.
  const abort = new AbortController();
  const clientSignal = c.req.raw.signal as AbortSignal | undefined;
  if (clientSignal?.aborted) abort.abort();
  clientSignal?.addEventListener("abort", () => abort.abort(), { once: true });

  const streaming = "stream" in request && request.stream !== false;
  // The runner gets the client's own (validated) body and re-reads it with the same schema.
  const payload: RunnerInferenceRequest = {
    request_id: run.requestId,
    model,
    request: body as Record<string, unknown>,
    tenant: run.info.tenantId,
    ...(c.get("relaxThinking") ? { relax_thinking: true } : {}),
  };
  try {
    const estimatedBytes = estimateModelBytes(model, shape, options);
    return await dispatch(run, model, estimatedBytes, JSON.stringify(payload), streaming, abort);
  } catch (err) {
    run.finish(abort.signal.aborted ? "cancelled" : "error", zeroUsage());
    // The refusal has a usage record too (nothing used): its id goes out with the error body. The header rides on
    // the error itself, since every dialect's renderer builds its own response from what was thrown.
    if (err instanceof ApiError) {
      throw new ApiError(err.status, err.message, { ...err.headers, [RUNNER_HEADER_REQUEST_ID]: run.requestId });
    }
    throw err;
  }
}

async function dispatch(
  run: InferenceRun,
  model: ResolvedModel,
  estimatedBytes: number,
  payload: string,
  streaming: boolean,
  abort: AbortController,
): Promise<Response> {
  const exclude: string[] = [];
  let lastError = "no runner tried";
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    let grant: Grant;
    try {
      grant = await acquireLease(run, model, estimatedBytes, exclude, abort.signal);
    } catch (err) {
      // After failed attempts, a 503 from the scheduler (no runner left to try, or none free in time) is best
      // explained by why the runners tried so far failed.
      if (attempt > 0 && err instanceof ApiError && err.status === 503) {
        throw runnersFailedError(lastError);
      }
      throw err;
    }
    run.hold(grant);
    const result = await forward(run, grant, payload, streaming, abort);
    switch (result.kind) {
      case "retry":
        run.releaseLease(result.release);
        exclude.push(grant.runner_id);
        lastError = result.error;
        continue;
      case "cancelled":
        run.finish("cancelled", zeroUsage());
        throw cancelledError();
      case "answered":
        return result.response;
    }
  }
  run.finish("error", zeroUsage());
  throw runnersFailedError(lastError);
}

type Attempt =
  | { kind: "retry"; error: string; release: ReleaseOutcome }
  | { kind: "cancelled" }
  | { kind: "answered"; response: Response };

/** One runner, one try. Nothing reaches the client until the runner's first body bytes have arrived. */
async function forward(
  run: InferenceRun,
  grant: Grant,
  payload: string,
  streaming: boolean,
  abort: AbortController,
): Promise<Attempt> {
  const { signal } = abort;
  const failed = (err: unknown, release: ReleaseOutcome = "failed_before_first_byte"): Attempt =>
    signal.aborted ? { kind: "cancelled" } : { kind: "retry", error: errorText(err), release };

  let response: Response;
  try {
    response = await fetchRunner(run.env, grant.url, `/v1/${run.info.endpoint}`, {
      method: "POST",
      headers: { "content-type": "application/json", [RUNNER_HEADER_REQUEST_ID]: run.requestId },
      body: payload,
      signal,
    });
  } catch (err) {
    return failed(err);
  }

  if (RETRYABLE_RUNNER_STATUSES.has(response.status)) {
    await response.body?.cancel().catch(() => {});
    // Busy or draining, not broken: try elsewhere without marking it unhealthy.
    return { kind: "retry", error: `runner answered ${response.status}`, release: "error" };
  }
  if (!response.ok || !response.body) {
    // The runner judged the request (bad option, unsupported feature...): its status and Ollama text go through.
    let text: string;
    try {
      text = await response.text();
    } catch (err) {
      return failed(err);
    }
    run.finish("error", zeroUsage());
    return {
      kind: "answered",
      response: new Response(text, { status: response.status, headers: jsonHeaders(run) }),
    };
  }

  const reader = response.body.getReader();
  let first: Uint8Array;
  try {
    const read = await reader.read();
    if (read.done) return failed(new Error("runner closed the response before the first byte"));
    first = read.value;
  } catch (err) {
    return failed(err);
  }

  if (streaming) return { kind: "answered", response: relayStream(run, reader, first, abort) };

  // One JSON object: read it whole, so a runner dying halfway is still invisible to the client (and retried).
  const chunks: Uint8Array[] = [first];
  try {
    for (let read = await reader.read(); !read.done; read = await reader.read()) chunks.push(read.value);
  } catch (err) {
    return failed(err, "failed_after_first_byte");
  }
  const bytes = concat(chunks);
  const { usage, error } = usageOfJson(new TextDecoder().decode(bytes));
  await run.finish(error === undefined ? "ok" : "error", usage);
  return { kind: "answered", response: new Response(bytes, { status: response.status, headers: jsonHeaders(run) }) };
}

/**
 * Passes the runner's NDJSON through chunk by chunk and meters it on the way. The copy runs in `waitUntil`, not in
 * the response body's pull: when a client disconnects, the Workers runtime drops the request's own work (a pending
 * pull included) without a word, and only `waitUntil` work lives on to notice and end the run. Each write waits for
 * the client to take the previous chunk, so the client's pace is still the runner's pace. Every ending — final
 * chunk, runner failure, client gone — finishes the run exactly once.
 */
function relayStream(
  run: InferenceRun,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  first: Uint8Array,
  abort: AbortController,
): Response {
  // The upstream fetch's signal stops a real connection; cancelling the reader also ends a read in progress.
  abort.signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
  // Workers' native byte pipe: a write settles once the client's side took the bytes, and fails once the client is
  // gone. (A JS TransformStream's write can instead wait forever on a client that disconnected.)
  const { readable, writable } = new IdentityTransformStream();
  run.waitUntil(copyStream(run, reader, first, writable.getWriter(), abort));
  return new Response(readable, { headers: { "content-type": NDJSON, [RUNNER_HEADER_REQUEST_ID]: run.requestId } });
}

async function copyStream(
  run: InferenceRun,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  first: Uint8Array,
  writer: WritableStreamDefaultWriter<ArrayBuffer | ArrayBufferView>,
  abort: AbortController,
): Promise<void> {
  const meter = new StreamMeter();
  /** Meters a chunk; the one holding the final line is billed before the client gets it (see InferenceRun.finish). */
  const observe = async (chunk: Uint8Array) => {
    meter.observe(chunk);
    if (meter.done) await run.finish("ok", meter.usage);
  };
  await observe(first);
  const clientLeft = new Promise<false>((resolve) => {
    if (abort.signal.aborted) resolve(false);
    abort.signal.addEventListener("abort", () => resolve(false), { once: true });
  });
  /** False once the client is gone: its side of the pipe failed, or the request's signal said so. */
  const deliver = (chunk: Uint8Array) =>
    Promise.race([
      writer.write(chunk).then(
        () => true,
        () => false,
      ),
      clientLeft,
    ]);
  // The runner stops when its connection drops; what it generated so far is what the request used.
  const clientGone = () => {
    abort.abort();
    run.finish(meter.done ? "ok" : "cancelled", meter.done ? meter.usage : meter.partialUsage());
    // Ends the client's side too, where it still exists (a request aborted through its signal).
    writer.close().catch(() => {});
  };
  const end = async (last?: Uint8Array) => {
    if (last) await deliver(last);
    await writer.close().catch(() => {});
  };

  if (!(await deliver(first))) return clientGone();
  for (;;) {
    let read: ReadableStreamReadResult<Uint8Array>;
    try {
      read = await reader.read();
    } catch (err) {
      if (abort.signal.aborted) {
        run.finish("cancelled", meter.partialUsage());
        return end();
      }
      if (meter.done) {
        run.finish("ok", meter.usage);
        return end();
      }
      run.finish("error", meter.partialUsage(), "failed_after_first_byte");
      return end(errorLine(`runner failed mid-stream: ${errorText(err)}`));
    }
    if (read.done) break;
    await observe(read.value);
    if (!(await deliver(read.value))) return clientGone();
  }

  meter.end();
  if (abort.signal.aborted && !meter.done) {
    run.finish("cancelled", meter.partialUsage());
    return end();
  }
  if (meter.done) {
    // A final line without its newline ends only when the stream closes: billed before that too.
    await run.finish("ok", meter.usage);
    return end();
  }
  if (meter.error !== undefined) {
    // The runner reported its own failure in-stream; the client already has that line.
    run.finish("error", meter.partialUsage());
    return end();
  }
  run.finish("error", meter.partialUsage(), "failed_after_first_byte");
  return end(errorLine("runner closed the stream before the final chunk"));
}

/** The line that ends a stream whose runner failed after the first byte (a server failure: 502). */
const errorLine = (message: string): Uint8Array =>
  new TextEncoder().encode(encodeNdjson(ndjsonErrorLine(new ApiError(502, message))));

/** The request id goes back to the client too: it names the request's usage record (support, billing audits). */
const jsonHeaders = (run: InferenceRun) => ({ "content-type": JSON_UTF8, [RUNNER_HEADER_REQUEST_ID]: run.requestId });

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}
