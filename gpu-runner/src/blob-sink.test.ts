/**
 * The blob sinks against local HTTP servers: one standing in for the edge's PUT /internal/blobs/:digest, one for
 * an S3 bucket (path-style), each recording what arrived.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EdgeBlobSink, edgeBlobIntent, S3BlobSink } from "./blob-sink";
import { blobOf, TEST_SECRET } from "./test-support";

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

type Answer = (req: Received, res: ServerResponse) => void;

interface Recorder {
  url: string;
  received: Received[];
  answer: Answer;
  close(): Promise<void>;
}

async function startRecorder(answer: Answer): Promise<Recorder> {
  const recorder = { received: [] as Received[], answer } as Recorder;
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const received = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) };
    recorder.received.push(received);
    recorder.answer(received, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  recorder.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  recorder.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return recorder;
}

let dir: string;
/** 3 MiB + 5 bytes: several read chunks, not a round number. */
const payload = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 31 + (i >> 8)) & 0xff);
const blob = blobOf(payload);
let file: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-sink-"));
  file = join(dir, "out.gguf");
  await writeFile(file, payload);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("EdgeBlobSink", () => {
  let edge: Recorder;
  beforeAll(async () => {
    edge = await startRecorder((_, res) => res.writeHead(201).end());
  });
  afterAll(() => edge.close());
  afterEach(() => {
    edge.received.length = 0;
  });

  it("PUTs the file to /internal/blobs/:digest with the secret and its length, reporting progress", async () => {
    edge.answer = (_, res) => res.writeHead(201).end();
    const progress: number[] = [];
    await new EdgeBlobSink(`${edge.url}/`, TEST_SECRET).put(blob.digest, payload.length, file, undefined, (sent) =>
      progress.push(sent),
    );
    expect(edge.received).toHaveLength(1);
    const [put] = edge.received;
    expect(put!.method).toBe("PUT");
    expect(put!.url).toBe(`/internal/blobs/${encodeURIComponent(blob.digest)}`);
    expect(put!.headers.authorization).toBe(`Bearer ${TEST_SECRET}`);
    expect(put!.headers["content-length"]).toBe(String(payload.length));
    expect(put!.headers["transfer-encoding"]).toBeUndefined();
    expect(put!.body.equals(Buffer.from(payload))).toBe(true);
    expect(progress.at(-1)).toBe(payload.length);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress.length).toBeGreaterThan(1);
  });

  it("accepts 200 (already stored)", async () => {
    edge.answer = (_, res) => res.writeHead(200).end();
    await expect(new EdgeBlobSink(edge.url, TEST_SECRET).put(blob.digest, payload.length, file)).resolves.toBe(
      undefined,
    );
  });

  it("surfaces the edge's message when it refuses the bytes", async () => {
    edge.answer = (_, res) =>
      res.writeHead(400, { "content-type": "application/json" }).end('{"error":"digest mismatch"}');
    await expect(new EdgeBlobSink(edge.url, TEST_SECRET).put(blob.digest, payload.length, file)).rejects.toThrow(
      /HTTP 400 digest mismatch/,
    );
  });

  it("fails on any other status", async () => {
    edge.answer = (_, res) => res.writeHead(503).end("overloaded");
    await expect(new EdgeBlobSink(edge.url, TEST_SECRET).put(blob.digest, payload.length, file)).rejects.toThrow(
      /HTTP 503 overloaded/,
    );
  });

  it("refuses a file whose size is not the one declared, and a malformed digest, before sending anything", async () => {
    const sink = new EdgeBlobSink(edge.url, TEST_SECRET);
    await expect(sink.put(blob.digest, payload.length + 1, file)).rejects.toThrow(/expected/);
    await expect(sink.put("sha256:../../x", payload.length, file)).rejects.toThrow(/invalid digest/);
    expect(edge.received).toHaveLength(0);
  });
});

describe("S3BlobSink", () => {
  let s3: Recorder;
  const hex = blob.digest.slice("sha256:".length);
  const key = `/bucket/blobs/sha256-${hex}`;
  const base64 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("base64");
  const xml = (res: ServerResponse, body: string) =>
    res.writeHead(200, { "content-type": "application/xml" }).end(`<?xml version="1.0" encoding="UTF-8"?>${body}`);
  /** Answers like S3: single PUT, multipart create / part / complete / abort; `failPart` answers BadDigest. */
  const s3Answer =
    (failPart?: number): Answer =>
    (req, res) => {
      const url = new URL(req.url, "http://s3");
      if (req.method === "POST" && url.searchParams.has("uploads")) {
        return xml(
          res,
          `<InitiateMultipartUploadResult><Bucket>bucket</Bucket><Key>k</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>`,
        );
      }
      if (req.method === "PUT" && url.searchParams.has("partNumber")) {
        const part = Number(url.searchParams.get("partNumber"));
        if (part === failPart) {
          return res
            .writeHead(400, { "content-type": "application/xml" })
            .end("<Error><Code>BadDigest</Code><Message>The SHA256 you specified did not match.</Message></Error>");
        }
        return res.writeHead(200, { etag: `"etag-${part}"` }).end();
      }
      if (req.method === "POST" && url.searchParams.has("uploadId")) {
        return xml(
          res,
          `<CompleteMultipartUploadResult><Bucket>bucket</Bucket><Key>k</Key><ETag>"whole"</ETag></CompleteMultipartUploadResult>`,
        );
      }
      if (req.method === "DELETE") return res.writeHead(204).end();
      if (req.method === "PUT") return res.writeHead(200, { etag: '"single"' }).end();
      res.writeHead(400).end();
    };
  const sinkWith = (extra: Partial<ConstructorParameters<typeof S3BlobSink>[0]> = {}) =>
    new S3BlobSink({
      bucket: "bucket",
      region: "us-east-1",
      endpoint: s3.url,
      forcePathStyle: true,
      accessKeyId: "AKIDTEST",
      secretAccessKey: "secret",
      ...extra,
    });

  beforeAll(async () => {
    s3 = await startRecorder(s3Answer());
  });
  afterAll(() => s3.close());
  afterEach(() => {
    s3.received.length = 0;
    s3.answer = s3Answer();
  });

  it("PUTs the blob under blobs/sha256-<hex> with the digest as its SHA-256 checksum", async () => {
    const sink = sinkWith();
    expect(sink.keyFor(blob.digest)).toBe(`blobs/sha256-${hex}`);
    const progress: number[] = [];
    await sink.put(blob.digest, payload.length, file, undefined, (sent) => progress.push(sent));
    sink.destroy();
    expect(s3.received).toHaveLength(1);
    const [put] = s3.received;
    expect(put!.method).toBe("PUT");
    expect(new URL(put!.url, "http://s3").pathname).toBe(key);
    expect(put!.headers["x-amz-checksum-sha256"]).toBe(Buffer.from(hex, "hex").toString("base64"));
    expect(put!.headers["content-length"]).toBe(String(payload.length));
    expect(put!.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDTEST\//);
    expect(put!.body.equals(Buffer.from(payload))).toBe(true);
    expect(progress.at(-1)).toBe(payload.length);
  });

  it("announces the blob to the edge before the first byte goes to the bucket, and stops if the edge refuses", async () => {
    const edge = await startRecorder((_req, res) => res.writeHead(201).end());
    try {
      const order: string[] = [];
      const announce = edgeBlobIntent(edge.url, TEST_SECRET);
      const sink = sinkWith({
        announce: async (digest, size, signal) => {
          await announce(digest, size, signal);
          order.push(`announced ${s3.received.length}`);
        },
      });
      await sink.put(blob.digest, payload.length, file);
      expect(order).toEqual(["announced 0"]);
      expect(s3.received).toHaveLength(1);
      const [intent] = edge.received;
      expect(intent!.method).toBe("POST");
      expect(intent!.url).toBe(`/internal/blobs/${encodeURIComponent(blob.digest)}/intent`);
      expect(intent!.headers.authorization).toBe(`Bearer ${TEST_SECRET}`);
      expect(JSON.parse(intent!.body.toString())).toEqual({ size: payload.length });

      edge.answer = (_req, res) => res.writeHead(409).end('{"error":"blob is recorded with another size"}');
      s3.received.length = 0;
      await expect(sink.put(blob.digest, payload.length, file)).rejects.toThrow(/HTTP 409/);
      expect(s3.received).toHaveLength(0);
      sink.destroy();
    } finally {
      await edge.close();
    }
  });

  it("uploads big blobs in parts, each with its own SHA-256, and completes with them", async () => {
    const partSize = 1024 * 1024;
    const sink = sinkWith({ multipartThreshold: 2 * 1024 * 1024, partSize, concurrency: 2 });
    const progress: number[] = [];
    await sink.put(blob.digest, payload.length, file, undefined, (sent) => progress.push(sent));
    sink.destroy();
    const create = s3.received.filter((r) => r.method === "POST" && r.url.includes("uploads"));
    expect(create).toHaveLength(1);
    expect(new URL(create[0]!.url, "http://s3").pathname).toBe(key);
    expect(create[0]!.headers["x-amz-checksum-algorithm"]).toBe("SHA256");
    const parts = s3.received
      .filter((r) => r.method === "PUT")
      .map((r) => ({ number: Number(new URL(r.url, "http://s3").searchParams.get("partNumber")), ...r }))
      .sort((a, b) => a.number - b.number);
    expect(parts.map((p) => p.number)).toEqual([1, 2, 3, 4]);
    expect(Buffer.concat(parts.map((p) => p.body)).equals(Buffer.from(payload))).toBe(true);
    for (const part of parts) {
      expect(new URL(part.url, "http://s3").searchParams.get("uploadId")).toBe("up-1");
      expect(part.headers["x-amz-checksum-sha256"]).toBe(base64(part.body));
    }
    const complete = s3.received.filter((r) => r.method === "POST" && r.url.includes("uploadId=up-1"));
    expect(complete).toHaveLength(1);
    const listed = complete[0]!.body.toString("utf8");
    for (const part of parts) {
      expect(listed).toContain(`<ChecksumSHA256>${base64(part.body)}</ChecksumSHA256>`);
      expect(listed).toContain(`<PartNumber>${part.number}</PartNumber>`);
    }
    expect(s3.received.some((r) => r.method === "DELETE")).toBe(false);
    expect(progress.at(-1)).toBe(payload.length);
  });

  it("aborts the multipart upload when a part is refused", async () => {
    s3.answer = s3Answer(2);
    const sink = sinkWith({ multipartThreshold: 1, partSize: 1024 * 1024, concurrency: 1 });
    await expect(sink.put(blob.digest, payload.length, file)).rejects.toThrow(/SHA256 you specified/);
    sink.destroy();
    const deletes = s3.received.filter((r) => r.method === "DELETE");
    expect(deletes).toHaveLength(1);
    expect(new URL(deletes[0]!.url, "http://s3").searchParams.get("uploadId")).toBe("up-1");
    expect(s3.received.some((r) => r.method === "POST" && r.url.includes("uploadId="))).toBe(false);
  });
});
