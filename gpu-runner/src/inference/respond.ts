/**
 * How inference output reaches the HTTP response. Streaming writes each chunk as an NDJSON line as soon as it
 * exists; `stream: false` folds the chunks into the final one and writes a single JSON object, as Ollama does.
 * Once the first line is out the status is fixed, so a later failure becomes an `{"error": "..."}` line.
 */
import type { ServerResponse } from "node:http";

export type Chunk = Record<string, unknown>;

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

export const mergeGenerateChunks: ChunkMerger = (folded, next) => ({
  ...next,
  response: `${(folded?.response as string | undefined) ?? ""}${(next.response as string | undefined) ?? ""}`,
  ...joinText("thinking", folded, next),
  ...joinList("logprobs", folded, next),
});

export const mergeChatChunks: ChunkMerger = (folded, next) => {
  const before = (folded?.message ?? {}) as Chunk;
  const now = (next.message ?? {}) as Chunk;
  const calls = [...((before.tool_calls as unknown[]) ?? []), ...((now.tool_calls as unknown[]) ?? [])];
  const message: Chunk = {
    ...now,
    role: "assistant",
    content: `${(before.content as string | undefined) ?? ""}${(now.content as string | undefined) ?? ""}`,
    ...joinText("thinking", before, now),
  };
  if (calls.length) message.tool_calls = calls;
  else delete message.tool_calls;
  return { ...next, message, ...joinList("logprobs", folded, next) };
};

function joinText(key: string, before: Chunk | undefined, now: Chunk): Chunk {
  const text = `${(before?.[key] as string | undefined) ?? ""}${(now[key] as string | undefined) ?? ""}`;
  return text ? { [key]: text } : {};
}

function joinList(key: string, before: Chunk | undefined, now: Chunk): Chunk {
  const list = [...((before?.[key] as unknown[] | undefined) ?? []), ...((now[key] as unknown[] | undefined) ?? [])];
  return list.length ? { [key]: list } : {};
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
