import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ApiError } from "./errors";
import { encodeNdjson, NdjsonDecoder, ndjsonStream, readNdjson } from "./ndjson";

function splitBytes(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.slice(start, point));
    start = point;
  }
  return chunks;
}

function decodeAll(chunks: Array<Uint8Array | string>, decoder = new NdjsonDecoder()): unknown[] {
  const out: unknown[] = [];
  for (const chunk of chunks) out.push(...decoder.push(chunk));
  out.push(...decoder.end());
  return out;
}

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

const jsonValue = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown); // drop -0

describe("encodeNdjson", () => {
  it("writes one compact line", () => {
    expect(encodeNdjson({ response: "a\nb", done: false })).toBe('{"response":"a\\nb","done":false}\n');
  });
});

describe("NdjsonDecoder", () => {
  it("survives any split of the byte stream, including inside multibyte characters", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            jsonValue,
            fc.string({ unit: "grapheme" }).map((s) => ({ response: s })),
          ),
          { maxLength: 8 },
        ),
        fc.array(fc.nat(), { maxLength: 16 }),
        (values, cuts) => {
          const bytes = new TextEncoder().encode(values.map(encodeNdjson).join(""));
          expect(decodeAll(splitBytes(bytes, cuts))).toEqual(values);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("splits a 4-byte character across three chunks", () => {
    const bytes = new TextEncoder().encode('{"response":"🦙"}\n');
    const at = bytes.indexOf(0xf0);
    const chunks = [bytes.slice(0, at + 1), bytes.slice(at + 1, at + 3), bytes.slice(at + 3)];
    expect(decodeAll(chunks)).toEqual([{ response: "🦙" }]);
  });

  it("ignores blank lines, accepts CRLF and a last line without newline", () => {
    expect(decodeAll(['\n{"a":1}\r\n', "  \n\n", '{"b":2}\n', "   ", '{"c":', "3}"])).toEqual([
      { a: 1 },
      { b: 2 },
      { c: 3 },
    ]);
  });

  it("accepts string chunks", () => {
    expect(decodeAll(['{"a"', ":1}\n{", '"b":2}\n'])).toEqual([{ a: 1 }, { b: 2 }]);
  });

  it("returns completed lines from each push as soon as they are complete", () => {
    const decoder = new NdjsonDecoder();
    expect(decoder.push('{"a":1}\n{"b"')).toEqual([{ a: 1 }]);
    expect(decoder.push(":2")).toEqual([]);
    expect(decoder.push("}\n")).toEqual([{ b: 2 }]);
    expect(decoder.end()).toEqual([]);
  });

  it("refuses a line longer than the limit, even when it arrives in small pieces", () => {
    const decoder = new NdjsonDecoder({ maxLineLength: 10 });
    expect(decoder.push('{"a":1}\n')).toEqual([{ a: 1 }]);
    decoder.push('{"a":');
    expect(() => decoder.push('"xxxxxxxx"}')).toThrow(/longer than 10/);
    expect(() => decodeAll(['{"abcdefgh":1}\n'], new NdjsonDecoder({ maxLineLength: 10 }))).toThrow(ApiError);
    expect(decodeAll(['{"abc":12}\n'], new NdjsonDecoder({ maxLineLength: 10 }))).toEqual([{ abc: 12 }]);
  });

  it("reports a malformed line as an ApiError with the configured status", () => {
    const bad = () => decodeAll(['{"a":1}\n', "not json\n"], new NdjsonDecoder({ errorStatus: 500 }));
    expect(bad).toThrow(ApiError);
    try {
      bad();
    } catch (err) {
      expect((err as ApiError).status).toBe(500);
      expect((err as ApiError).message).toContain("not json");
    }
  });
});

describe("readNdjson", () => {
  it("yields every value of a chunked byte stream", async () => {
    const values = [
      { response: "héllo", done: false },
      { response: "", done: true, eval_count: 3 },
    ];
    const bytes = new TextEncoder().encode(values.map(encodeNdjson).join(""));
    const out: unknown[] = [];
    for await (const value of readNdjson(streamOf(splitBytes(bytes, [1, 5, 14, 15, 40])))) out.push(value);
    expect(out).toEqual(values);
  });

  it("cancels the source when the consumer stops early", async () => {
    let cancelled = false;
    let sent = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new TextEncoder().encode(encodeNdjson({ n: sent++ })));
      },
      cancel() {
        cancelled = true;
      },
    });
    for await (const value of readNdjson(source)) {
      expect(value).toEqual({ n: 0 });
      break;
    }
    expect(cancelled).toBe(true);
  });
});

describe("ndjsonStream", () => {
  it("round-trips through readNdjson", async () => {
    async function* produce() {
      yield { a: 1 };
      yield { b: "two\nlines" };
    }
    const out: unknown[] = [];
    for await (const value of readNdjson(ndjsonStream(produce()))) out.push(value);
    expect(out).toEqual([{ a: 1 }, { b: "two\nlines" }]);
  });

  it("stops the producer when the stream is cancelled", async () => {
    let finished = false;
    function* produce() {
      try {
        for (let i = 0; ; i++) yield { i };
      } finally {
        finished = true;
      }
    }
    const reader = ndjsonStream(produce()).getReader();
    await reader.read();
    await reader.cancel();
    expect(finished).toBe(true);
  });
});
