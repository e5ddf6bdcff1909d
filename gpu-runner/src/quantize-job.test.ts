/**
 * POST /v1/quantize end to end over real HTTP: the test runner (test-support.ts), whose blob cache fetches the tiny
 * F16 model from a local stand-in for the edge, llama.cpp's quantizer (the real engine) and an EdgeBlobSink storing into a second local
 * server that records the bytes it receives. Faults are injected through the server's `quantize` dep and the
 * recorder's answer only.
 */
import { createHash } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { digestToFileName } from "@corral/protocol/digest";
import { bytesSource, readGgufHeader } from "@corral/protocol/gguf/index";
import { type JobEvent, JobEventSchema } from "@corral/protocol/runner";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { EdgeBlobSink } from "./blob-sink";
import { loadedQuantizeEngine, type QuantizeFn } from "./quantize-job";
import type { RunnerServer } from "./server";
import { ndjsonLines, startTestRunner, TEST_SECRET, type TestRunner, tinyModelBlob } from "./test-support";

interface StoredPut {
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** The edge's PUT /internal/blobs/:digest: records every body, answers `storeStatus` (201 unless a test changes it). */
let storeStatus = 201;
const puts: StoredPut[] = [];
let store: { url: string; close(): Promise<void> };
let testRunner: TestRunner;
let runner: RunnerServer;
let cacheDir: string;
let base: string;
/** What the runner's `quantize` dep runs: the real engine unless a test injects a fault. */
let quantize: QuantizeFn = loadedQuantizeEngine;

const tiny = tinyModelBlob();
let nextId = 0;
const job = (extra: Record<string, unknown> = {}) => ({
  request_id: `q${nextId++}`,
  source: { digest: tiny.digest, size: tiny.bytes.length },
  file_type: "Q8_0",
  ...extra,
});
const postJob = (body: unknown, init: RequestInit = {}) =>
  fetch(`${base}/v1/quantize`, {
    method: "POST",
    headers: { authorization: `Bearer ${TEST_SECRET}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    ...init,
  });
const events = async (res: Response) => (await ndjsonLines(res)).map((line) => JobEventSchema.parse(line));
const metricsText = async () =>
  (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TEST_SECRET}` } })).text();
const jobCount = async (status: number) => {
  const line = (await metricsText())
    .split("\n")
    .find((l) => l.startsWith(`corral_runner_jobs_total{kind="quantize",status="${status}"}`));
  return line ? Number(line.split(" ").at(-1)) : 0;
};
/** Files in the cache directory other than cached blobs (the source, and results the cache adopted). */
const strayFiles = async () => (await readdir(cacheDir)).filter((name) => !/^sha256-[0-9a-f]{64}$/.test(name));

beforeAll(async () => {
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    puts.push({ url: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
    if (storeStatus >= 400) {
      res.writeHead(storeStatus, { "content-type": "application/json" }).end('{"error":"store unavailable"}');
    } else {
      res.writeHead(storeStatus).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  store = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  testRunner = await startTestRunner({
    sink: new EdgeBlobSink(store.url, TEST_SECRET),
    quantize: (options) => quantize(options),
    threads: 1,
  });
  ({ base, runner, dir: cacheDir } = testRunner);
});

afterAll(async () => {
  await testRunner.stop();
  await store.close();
});

/** A quantizer that writes part of its output, reports one tensor and then waits for its signal. */
function hangingQuantize() {
  let seen: Parameters<QuantizeFn>[0] | undefined;
  let started!: () => void;
  let aborted!: () => void;
  const startedP = new Promise<void>((resolve) => (started = resolve));
  const abortedP = new Promise<void>((resolve) => (aborted = resolve));
  const fn: QuantizeFn = async (options) => {
    seen = options;
    await writeFile(options.output, "half a model");
    options.onProgress?.(1, 21);
    started();
    await new Promise<void>((_, reject) =>
      options.signal!.addEventListener("abort", () => {
        aborted();
        reject(Object.assign(new Error("quantize aborted"), { name: "AbortError" }));
      }),
    );
  };
  return { fn, started: startedP, aborted: abortedP, options: () => seen! };
}

describe("POST /v1/quantize", () => {
  it("quantizes the F16 source to Q8_0, stores it through the sink and reports its digest and size", async () => {
    quantize = loadedQuantizeEngine;
    puts.length = 0;
    storeStatus = 201;
    const res = await postJob(job());
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = await events(res);
    const done = lines.at(-1)!;
    expect(done.event).toBe("done");
    expect(lines.filter((e) => e.event !== "progress")).toEqual([done]);

    // Phases in order, each one's progress never going back and finishing complete.
    const progress = lines.filter((e): e is Extract<JobEvent, { event: "progress" }> => e.event === "progress");
    const phases = progress.map((e) => e.phase).filter((p, i, all) => p !== all[i - 1]);
    expect(phases).toEqual(["fetch", "quantize", "upload"]);
    for (const phase of phases) {
      const of = progress.filter((e) => e.phase === phase);
      const completed = of.map((e) => e.completed);
      expect(completed).toEqual([...completed].sort((a, b) => a - b));
      expect(of.at(-1)!.completed).toBe(of.at(-1)!.total);
      expect(of.at(-1)!.total).toBeGreaterThan(0);
    }
    // The tiny model has 3 + 9 × 2 tensors; the quantizer reports each of them.
    expect(progress.filter((e) => e.phase === "quantize").at(-1)!.total).toBe(21);

    expect(puts).toHaveLength(1);
    const put = puts[0]!;
    const received = `sha256:${createHash("sha256").update(put.body).digest("hex")}`;
    expect(done).toEqual({ event: "done", digest: received, size: put.body.length });
    expect(put.url).toBe(`/internal/blobs/${encodeURIComponent(received)}`);
    expect(put.headers.authorization).toBe(`Bearer ${TEST_SECRET}`);
    expect(put.headers["content-length"]).toBe(String(put.body.length));
    const upload = progress.filter((e) => e.phase === "upload");
    expect(upload.at(-1)).toMatchObject({ completed: put.body.length, total: put.body.length });

    const header = await readGgufHeader(bytesSource(new Uint8Array(put.body)));
    expect(header.metadata["general.file_type"]).toBe(7);
    expect(header.metadata["general.architecture"]).toBe("llama");
    expect(header.tensorCount).toBe(21);
    // Q8_0 takes about 8.5 bits a weight where F16 took 16.
    expect(put.body.length).toBeLessThan(tiny.bytes.length);

    expect(await strayFiles()).toEqual([]);
    // The result stays in the runner's cache, so the model made from it loads without fetching it back.
    expect(await readFile(join(cacheDir, digestToFileName(received)))).toEqual(put.body);
    expect(await jobCount(200)).toBe(1);
  });

  it("needs the runner secret", async () => {
    const res = await fetch(`${base}/v1/quantize`, { method: "POST", body: JSON.stringify(job()) });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "unauthorized" });
    const wrong = await fetch(`${base}/v1/quantize`, {
      method: "POST",
      headers: { authorization: "Bearer nope" },
      body: JSON.stringify(job()),
    });
    expect(wrong.status).toBe(401);
  });

  it.each([
    ["an unknown file type", job({ file_type: "Q3_X" }), /file_type/],
    ["a source digest that is not sha256", job({ source: { digest: "md5:abc", size: 10 } }), /invalid digest format/],
    ["uppercase hex", job({ source: { digest: `sha256:${"A".repeat(64)}`, size: 10 } }), /invalid digest format/],
    ["a negative size", job({ source: { digest: tiny.digest, size: -1 } }), /source.size/],
    ["no request id", { source: { digest: tiny.digest, size: 1 }, file_type: "F16" }, /request_id/],
  ])("answers 400 for %s", async (_, body, message) => {
    const res = await postJob(body);
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { error: string };
    expect(answer.error).toMatch(message);
  });

  it("answers 400 for a body that is not JSON and 405 for GET", async () => {
    const res = await fetch(`${base}/v1/quantize`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_SECRET}` },
      body: "{not json",
    });
    expect(res.status).toBe(400);
    const get = await fetch(`${base}/v1/quantize`, { headers: { authorization: `Bearer ${TEST_SECRET}` } });
    expect(get.status).toBe(405);
  });

  it("ends with an error line when the store refuses the result, leaving no temp file", async () => {
    quantize = loadedQuantizeEngine;
    storeStatus = 500;
    puts.length = 0;
    try {
      const res = await postJob(job());
      expect(res.status).toBe(200);
      const lines = await events(res);
      expect(lines.filter((e) => e.event !== "progress")).toEqual([lines.at(-1)]);
      expect(lines.at(-1)).toEqual({
        event: "error",
        error: expect.stringMatching(/HTTP 500 store unavailable/),
        status: 500,
      });
      expect(puts).toHaveLength(1);
      expect(await strayFiles()).toEqual([]);
      expect(await jobCount(500)).toBe(1);
    } finally {
      storeStatus = 201;
    }
  });

  it("reports a source blob the store does not have as a 404 error line", async () => {
    const missing = `sha256:${"0".repeat(64)}`;
    const lines = await events(await postJob(job({ source: { digest: missing, size: 100 } })));
    expect(lines.at(-1)).toEqual({ event: "error", error: `model blob ${missing} not found`, status: 404 });
    expect(await strayFiles()).toEqual([]);
  });

  it("reports an engine failure as an error line", async () => {
    quantize = async () => {
      throw new Error("llama.cpp could not quantize: unsupported tensor");
    };
    try {
      const lines = await events(await postJob(job()));
      expect(lines.at(-1)).toEqual({
        event: "error",
        error: "llama.cpp could not quantize: unsupported tensor",
        status: 500,
      });
    } finally {
      quantize = loadedQuantizeEngine;
    }
  });

  it("cancels the job when the client hangs up: the quantizer's signal aborts and its output is removed", async () => {
    const hanging = hangingQuantize();
    quantize = hanging.fn;
    const cancelledBefore = await jobCount(499);
    puts.length = 0;
    try {
      const client = new AbortController();
      const res = await postJob(job(), { signal: client.signal });
      expect(res.status).toBe(200);
      await hanging.started;
      const options = hanging.options();
      // Paths are the runner's own: the cached source, an output inside the cache directory.
      expect(options.input).toBe(join(cacheDir, digestToFileName(tiny.digest)));
      expect(dirname(options.output)).toBe(cacheDir);
      expect(options).toMatchObject({ fileType: "Q8_0", threads: 1 });
      expect(options.signal!.aborted).toBe(false);
      expect(await strayFiles()).toHaveLength(1);

      // Read up to the quantize progress line, then hang up.
      const reader = res.body!.getReader();
      let text = "";
      while (!text.includes('"phase":"quantize"')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      expect(text).toContain('{"event":"progress","phase":"quantize","completed":1,"total":21}');
      client.abort();
      await hanging.aborted;
      expect(options.signal!.aborted).toBe(true);
      await vi.waitFor(async () => expect(await jobCount(499)).toBe(cancelledBefore + 1), { timeout: 10_000 });
      expect(await strayFiles()).toEqual([]);
      expect(puts).toHaveLength(0);
    } finally {
      quantize = loadedQuantizeEngine;
    }
  });

  it("runs one job at a time (503 for another) and refuses jobs while draining", async () => {
    const hanging = hangingQuantize();
    quantize = hanging.fn;
    const client = new AbortController();
    try {
      const first = await postJob(job(), { signal: client.signal });
      expect(first.status).toBe(200);
      await hanging.started;
      const second = await postJob(job());
      expect(second.status).toBe(503);
      expect(await second.json()).toEqual({ error: "runner is busy with another job" });
    } finally {
      client.abort();
      await hanging.aborted;
      quantize = loadedQuantizeEngine;
    }
    runner.setEdgeDraining(true);
    try {
      const res = await postJob(job());
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ error: "runner is draining" });
    } finally {
      runner.setEdgeDraining(false);
    }
  });
});
