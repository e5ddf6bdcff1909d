/**
 * How inference output reaches the HTTP response. Streaming writes each chunk as an NDJSON line as soon as it
 * exists; `stream: false` folds the chunks into the final one and writes a single JSON object, as Ollama does.
 * Once the first line is out the status is fixed, so a later failure becomes an `{"error": "..."}` line.
 */
import type { ServerResponse } from "node:http";
import type { ChatResponse, GenerateResponse } from "@corral/protocol/types";

/** One line of a generate or chat answer: Ollama's wire types, defined once in protocol/. */
export type Chunk = GenerateResponse | ChatResponse;

export interface ResponseSink {
  /** A done:false chunk. */
  chunk(value: Chunk): void;
  /** The done:true chunk; ends the response. */
  end(value: Chunk): void;
  /** A complete single-object answer (embed, load/unload), whatever the stream flag says. */
  json(value: unknown, status?: number): void;
  /** True once bytes went out: errors can no longer change the status. */
  readonly started: boolean;
}

/** Folds a chunk's text into the running non-streamed answer. */
export type ChunkMerger = (folded: Chunk | undefined, next: Chunk) => Chunk;

/** Generate's chunks: the response (and thinking) texts joined. */
export const mergeGenerateChunks: ChunkMerger = (folded, next) => {
  const before = folded as GenerateResponse | undefined;
  const now = next as GenerateResponse;
  return {
    ...now,
    response: `${before?.response ?? ""}${now.response}`,
    ...joinThinking(before?.thinking, now.thinking),
    ...joinLogprobs(before?.logprobs, now.logprobs),
  };
};

/** Chat's chunks: the message's content (and thinking) joined, its tool calls gathered. */
export const mergeChatChunks: ChunkMerger = (folded, next) => {
  const before = (folded as ChatResponse | undefined)?.message;
  const now = (next as ChatResponse).message;
  const calls = [...(before?.tool_calls ?? []), ...(now.tool_calls ?? [])];
  const { tool_calls: _, thinking: __, ...rest } = now;
  const message: ChatResponse["message"] = {
    ...rest,
    role: "assistant",
    content: `${before?.content ?? ""}${now.content}`,
    ...joinThinking(before?.thinking, now.thinking),
  };
  if (calls.length) message.tool_calls = calls;
  const logprobs = joinLogprobs((folded as ChatResponse | undefined)?.logprobs, (next as ChatResponse).logprobs);
  return { ...(next as ChatResponse), message, ...logprobs };
};

/** Ollama's logprobs of the folded answer: every chunk's entries, in order. */
function joinLogprobs<T>(before: readonly T[] | undefined, now: readonly T[] | undefined): { logprobs?: T[] } {
  const all = [...(before ?? []), ...(now ?? [])];
  return all.length ? { logprobs: all } : {};
}

function joinThinking(before: string | undefined, now: string | undefined): { thinking?: string } {
  const text = `${before ?? ""}${now ?? ""}`;
  return text ? { thinking: text } : {};
}

const NDJSON = "application/x-ndjson";
const JSON_TYPE = "application/json; charset=utf-8";

export function createSink(res: ServerResponse, stream: boolean, merge: ChunkMerger): ResponseSink {
  let folded: Chunk | undefined;
  let started = false;
  const writeJson = (value: unknown, status: number) => {
    started = true;
    const body = JSON.stringify(value);
    res.writeHead(status, { "content-type": JSON_TYPE, "content-length": Buffer.byteLength(body) });
    res.end(body);
  };
  const writeLine = (value: unknown) => {
    if (res.writableEnded || res.destroyed) return;
    if (!started) {
      started = true;
      res.writeHead(200, { "content-type": NDJSON, "cache-control": "no-store" });
      // Headers go out with the first line; nothing is buffered before it.
      res.flushHeaders();
    }
    res.write(`${JSON.stringify(value)}\n`);
  };
  return {
    get started() {
      return started;
    },
    chunk(value) {
      if (stream) writeLine(value);
      else folded = merge(folded, value);
    },
    end(value) {
      if (stream) {
        writeLine(value);
        res.end();
      } else {
        writeJson(merge(folded, value), 200);
      }
    },
    json(value, status = 200) {
      writeJson(value, status);
    },
  };
}
