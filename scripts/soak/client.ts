/**
 * One soak request over plain fetch (the soak needs what a client library hides: status, the edge's request id,
 * partial streams, aborts at chosen points), recorded as a RequestRecord, with the answer's text and token count
 * where it completed.
 */
import { RUNNER_HEADER_REQUEST_ID } from "@corral/protocol";
import type { Outcome, RequestRecord } from "./invariants";

export interface SoakRequest {
  tenant: string;
  key: string;
  method?: string;
  endpoint: string;
  /** A path with parameters where it differs from the endpoint (`/api/blobs/<digest>`). */
  path?: string;
  body?: unknown;
  /** Sent as is (malformed JSON or UTF-8, GGUF bytes) instead of JSON-encoding `body`. */
  rawBody?: string | Uint8Array;
  stream: boolean;
  badInput?: string;
  badInputMayPass?: boolean;
  /** Abort after this many ms (a client giving up). */
  abortAfterMs?: number;
  /** Client-side limit: a request that hangs longer than this (a stopped runner) counts as aborted. */
  timeoutMs: number;
}

export interface SoakResult {
  record: RequestRecord;
  text: string;
  /** The last JSON object of the answer (a stream's `done` line, a progress stream's `success`). */
  final?: Record<string, unknown>;
}

/** The text and final object of an Ollama NDJSON stream or OpenAI SSE stream, and whether it reached its end. */
export function parseAnswer(
  body: string,
  sse: boolean,
): { text: string; final?: Record<string, unknown>; complete: boolean } {
  let text = "";
  let final: Record<string, unknown> | undefined;
  let complete = false;
  const lines = body.split("\n").filter((l) => l.trim());
  for (const raw of lines) {
    const line = sse ? raw.replace(/^data: ?/, "") : raw;
    if (sse && line === "[DONE]") {
      complete = true;
      continue;
    }
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if ("error" in obj) return { text, final: obj, complete: false };
    final = obj;
    text += chunkText(obj);
    if (!sse && (obj.done === true || obj.status === "success")) complete = true;
  }
  return { text, final, complete };
}

function chunkText(obj: Record<string, unknown>): string {
  if (typeof obj.response === "string") return obj.response;
  const message = obj.message as { content?: unknown } | undefined;
  if (typeof message?.content === "string") return message.content;
  const choice = (obj.choices as { delta?: { content?: unknown }; message?: { content?: unknown } }[] | undefined)?.[0];
  const content = choice?.delta?.content ?? choice?.message?.content;
  return typeof content === "string" ? content : "";
}

export function outputTokens(final: Record<string, unknown> | undefined): number | undefined {
  if (!final) return undefined;
  if (typeof final.eval_count === "number") return final.eval_count;
  const usage = final.usage as { completion_tokens?: unknown } | undefined;
  return typeof usage?.completion_tokens === "number" ? usage.completion_tokens : undefined;
}

const outcomeOf = (status: number): Outcome => (status < 300 ? "ok" : status < 500 ? "refused" : "server_error");

export async function send(baseUrl: string, req: SoakRequest): Promise<SoakResult> {
  const controller = new AbortController();
  let abortedOnPurpose = false;
  const abortTimer =
    req.abortAfterMs === undefined
      ? undefined
      : setTimeout(() => {
          abortedOnPurpose = true;
          controller.abort();
        }, req.abortAfterMs);
  const timeout = setTimeout(() => controller.abort(), req.timeoutMs);
  const record: RequestRecord = {
    tenant: req.tenant,
    endpoint: req.endpoint,
    stream: req.stream,
    ...(req.badInput ? { badInput: req.badInput } : {}),
    ...(req.badInputMayPass ? { badInputMayPass: true } : {}),
    startedAt: Date.now(),
    endedAt: 0,
    outcome: "network_error",
  };
  let text = "";
  let final: Record<string, unknown> | undefined;
  try {
    const res = await fetch(`${baseUrl}${req.path ?? req.endpoint}`, {
      method: req.method ?? "POST",
      headers: { authorization: `Bearer ${req.key}`, "content-type": "application/json" },
      body: req.rawBody ?? (req.body === undefined ? undefined : JSON.stringify(req.body)),
      signal: controller.signal,
    });
    record.status = res.status;
    const id = res.headers.get(RUNNER_HEADER_REQUEST_ID);
    if (id) record.requestId = id;
    const body = await res.text();
    record.outcome = outcomeOf(res.status);
    if (res.ok) {
      const answer = parseAnswer(body, (res.headers.get("content-type") ?? "").includes("text/event-stream"));
      text = answer.text;
      final = answer.final;
      // A 200 stream that ends in an error line or without its end did not complete.
      if (req.stream && !answer.complete) record.outcome = "server_error";
      const tokens = outputTokens(final);
      if (tokens !== undefined) record.outputTokens = tokens;
    }
  } catch {
    record.outcome = abortedOnPurpose ? "aborted" : controller.signal.aborted ? "timed_out" : "network_error";
  } finally {
    clearTimeout(abortTimer);
    clearTimeout(timeout);
    record.endedAt = Date.now();
  }
  return { record, text, ...(final ? { final } : {}) };
}
