import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { digestHex, digestingStream, digestOf, digestToFileName, isDigest, parseDigest } from "./digest";
import { ApiError } from "./errors";

const HEX = "29fdb92e57cf0827ded04ae6461b5931d01fa595843f55d36f5b275a52087dd2";

function streamOf(chunks: Uint8Array[], failAfter?: Error): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]!);
      else if (failAfter) controller.error(failAfter);
      else controller.close();
    },
  });
}

async function drain(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) out.push(chunk);
  return out;
}

describe("parseDigest", () => {
  it.each([
    [`sha256:${HEX}`, `sha256:${HEX}`],
    [`sha256-${HEX}`, `sha256:${HEX}`],
    [`sha256:${HEX.toUpperCase()}`, null], // uppercase would give one blob two keys
    [`SHA256:${HEX}`, null],
    [HEX, null],
    [`sha256:${HEX.slice(1)}`, null],
    [`sha256:${HEX}0`, null],
    [`sha256_${HEX}`, null],
    [`sha512:${HEX}`, null],
    [`sha256:${HEX.slice(0, 63)}g`, null],
    [` sha256:${HEX}`, null],
    [`sha256:${HEX}\n`, null],
    [`sha256:../${HEX.slice(3)}`, null],
    ["", null],
  ])("%j → %j", (input, expected) => {
    expect(parseDigest(input)).toBe(expected);
    expect(isDigest(input)).toBe(expected !== null);
  });
});

describe("digestToFileName / digestHex", () => {
  it("spells digests the way Ollama names blob files", () => {
    expect(digestToFileName(`sha256:${HEX}`)).toBe(`sha256-${HEX}`);
    expect(digestToFileName(`sha256-${HEX}`)).toBe(`sha256-${HEX}`);
    expect(digestHex(`sha256-${HEX}`)).toBe(HEX);
  });

  it("refuses anything else with Ollama's 400", () => {
    for (const bad of ["../../etc/passwd", `sha256:${HEX.toUpperCase()}`, ""]) {
      expect(() => digestToFileName(bad)).toThrow(ApiError);
      expect(() => digestToFileName(bad)).toThrow("invalid digest format");
    }
  });
});

describe("digestOf", () => {
  it("is the canonical digest of the bytes", () => {
    const bytes = new TextEncoder().encode("hello corral");
    expect(digestOf(bytes)).toBe(`sha256:${createHash("sha256").update(bytes).digest("hex")}`);
  });
});

describe("digestingStream", () => {
  it("passes bytes through unchanged and reports digest and size at the end", async () => {
    const chunks = [new Uint8Array([1, 2, 3]), new Uint8Array(100).fill(9), new Uint8Array([])];
    const { stream, result } = digestingStream(streamOf(chunks));
    const seen = await drain(stream);
    expect(Buffer.concat(seen)).toEqual(Buffer.concat(chunks));
    const all = Buffer.concat(chunks);
    await expect(result).resolves.toEqual({
      digest: `sha256:${createHash("sha256").update(all).digest("hex")}`,
      size: all.length,
    });
  });

  it("rejects the result when the source fails", async () => {
    const boom = new Error("connection reset");
    const { stream, result } = digestingStream(streamOf([new Uint8Array([1])], boom));
    await expect(drain(stream)).rejects.toThrow("connection reset");
    await expect(result).rejects.toThrow("connection reset");
  });

  it("rejects the result and cancels the source when the reader cancels", async () => {
    let sourceCancelled = false;
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array([1]));
      },
      cancel() {
        sourceCancelled = true;
      },
    });
    const { stream, result } = digestingStream(source);
    const reader = stream.getReader();
    await reader.read();
    await reader.cancel(new Error("client went away"));
    await expect(result).rejects.toThrow("client went away");
    expect(sourceCancelled).toBe(true);
  });
});
