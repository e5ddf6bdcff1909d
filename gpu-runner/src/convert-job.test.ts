/**
 * POST /v1/convert over real HTTP: the test runner (test-support.ts) fetches a tiny checkpoint's files from a local
 * stand-in for the edge, converts them in the real child process and stores the GGUF through an EdgeBlobSink into a
 * local recorder. Faults are injected through the runner's `convert` dep only.
 */
import { createHash } from "node:crypto";
import { readdir, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { bytesSource, readGgufHeader } from "@corral/protocol/gguf/index";
import { type JobEvent, JobEventSchema } from "@corral/protocol/runner";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EdgeBlobSink } from "./blob-sink";
import { tinyCheckpoint } from "./convert/checkpoint-fixture";
import { type ConvertFn, loadedConvertEngine } from "./convert-job";
import { blobOf, ndjsonLines, startTestRunner, TEST_SECRET, type TestRunner } from "./test-support";

const puts: Buffer[] = [];
let store: { url: string; close(): Promise<void> };
let testRunner: TestRunner;
let convert: ConvertFn = loadedConvertEngine;

const good = tinyCheckpoint({ seed: 3 });
/** ~50 MB of F32 weights in ~100 tensors: a conversion that takes a while. */
const big = tinyCheckpoint({ seed: 4, hidden: 256, layers: 12, feedForward: 1024 });
const badConfig = new TextEncoder().encode('{"architectures":["FalconForCausalLM"]}');
const blobs = [...good.files.values(), ...big.files.values(), badConfig].map(blobOf);
const fileList = (files: Map<string, Uint8Array>) =>
  [...files].map(([name, bytes]) => ({ name, digest: blobOf(bytes).digest, size: bytes.length }));
let nextId = 0;
const postJob = (body: unknown, init: RequestInit = {}) =>
  fetch(`${testRunner.base}/v1/convert`, {
    method: "POST",
    headers: { authorization: `Bearer ${TEST_SECRET}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    ...init,
  });
const events = async (res: Response) => (await ndjsonLines(res)).map((line) => JobEventSchema.parse(line));
const strayFiles = async () => (await readdir(testRunner.dir)).filter((name) => !/^sha256-[0-9a-f]{64}$/.test(name));

beforeAll(async () => {
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    puts.push(Buffer.concat(chunks));
    res.writeHead(201).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  store = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  testRunner = await startTestRunner({
    sink: new EdgeBlobSink(store.url, TEST_SECRET),
    convert: (options) => convert(options),
    blobs,
  });
});

afterAll(async () => {
  await testRunner.stop();
  await store.close();
});

describe("POST /v1/convert", () => {
  it("converts the checkpoint, stores the GGUF through the sink and reports it", async () => {
    const res = await postJob({ request_id: `c${nextId++}`, files: fileList(good.files) });
    expect(res.status).toBe(200);
    const lines = await events(res);
    const done = lines.at(-1)!;
    const progress = lines.filter((e): e is Extract<JobEvent, { event: "progress" }> => e.event === "progress");
    expect(progress.map((e) => e.phase).filter((p, i, all) => p !== all[i - 1])).toEqual([
      "fetch",
      "convert",
      "upload",
    ]);
    const stored = puts.at(-1)!;
    expect(done).toEqual({
      event: "done",
      digest: `sha256:${createHash("sha256").update(stored).digest("hex")}`,
      size: stored.length,
    });
    const header = await readGgufHeader(bytesSource(new Uint8Array(stored)));
    const reference = await readGgufHeader(bytesSource(good.reference));
    expect(header.metadata["general.architecture"]).toBe("llama");
    expect(header.tensors.map((t) => t.name).sort()).toEqual(reference.tensors.map((t) => t.name).sort());
    expect(await strayFiles()).toEqual([]);
  });

  it("a checkpoint the converter refuses: an error line with status 400, nothing stored or left behind", async () => {
    const files = fileList(good.files).map((f) =>
      f.name === "config.json" ? { ...f, digest: blobOf(badConfig).digest, size: badConfig.length } : f,
    );
    const before = puts.length;
    const lines = await events(await postJob({ request_id: `c${nextId++}`, files }));
    expect(lines.at(-1)).toEqual({
      event: "error",
      error: 'unsupported architecture "FalconForCausalLM"',
      status: 400,
    });
    expect(puts.length).toBe(before);
    expect(await strayFiles()).toEqual([]);
    expect((await testRunner.status()).id).toBe("test-runner");
  });

  it.each([
    [{ request_id: "x", files: [] }, /invalid convert job: files/],
    [
      { request_id: "x", files: [{ name: "../etc/passwd", digest: blobs[0]!.digest, size: 1 }] },
      /file path must be relative/,
    ],
    [{ request_id: "x", files: [{ name: "a", digest: "sha256:zz", size: 1 }] }, /invalid digest format/],
    [
      {
        request_id: "x",
        files: fileList(good.files),
        adapter_base: { architecture: "llama", layers: 1, heads: 0, kv_heads: 1, tensors: [] },
      },
      /invalid convert job: adapter_base\.heads/,
    ],
    [
      {
        request_id: "x",
        files: fileList(good.files),
        adapter_base: {
          architecture: "llama",
          layers: 1,
          heads: 2,
          kv_heads: 1,
          tensors: [{ name: "blk.0.attn_q.weight", dims: [8, 8, 1] }],
        },
      },
      /invalid convert job: adapter_base\.tensors\.0\.dims/,
    ],
  ])("refuses a bad job body with a plain 400: %j", async (body, message) => {
    const res = await postJob(body);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(message);
  });

  it("the runner keeps answering while a conversion runs (the work is in a child process)", async () => {
    const res = await postJob({ request_id: `c${nextId++}`, files: fileList(big.files) });
    // Lines and the other request's answer are recorded in the order they arrive here.
    const arrivals: string[] = [];
    let converting!: () => void;
    const convertStarted = new Promise<void>((resolve) => (converting = resolve));
    const reading = (async () => {
      let buffered = "";
      for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
        const lines = (buffered + chunk).split("\n");
        buffered = lines.pop()!;
        for (const line of lines) {
          const event = JobEventSchema.parse(JSON.parse(line));
          if (event.event !== "progress") arrivals.push(event.event);
          else if (event.phase === "convert") {
            arrivals.push(event.completed === event.total ? "convert done" : "converting");
            converting();
          }
        }
      }
    })();
    await convertStarted;
    expect((await testRunner.status()).id).toBe("test-runner");
    arrivals.push("status answered");
    await reading;
    expect(arrivals.at(-1)).toBe("done");
    // A runner converting on its own event loop would answer only once the conversion had ended.
    expect(arrivals.indexOf("status answered")).toBeLessThan(arrivals.indexOf("convert done"));
  });

  it("the edge hanging up mid-conversion cancels it and leaves nothing behind", async () => {
    let started!: () => void;
    const startedP = new Promise<void>((resolve) => (started = resolve));
    let aborted = false;
    convert = async (options) => {
      await writeFile(options.output, "half a model");
      started();
      await new Promise<void>((_, reject) =>
        options.signal!.addEventListener("abort", () => {
          aborted = true;
          reject(Object.assign(new Error("convert aborted"), { name: "AbortError" }));
        }),
      );
      return { size: 0, maxRssBytes: 0 };
    };
    try {
      const controller = new AbortController();
      const res = await postJob(
        { request_id: `c${nextId++}`, files: fileList(good.files) },
        { signal: controller.signal },
      );
      const reading = res.text().catch(() => "");
      await startedP;
      controller.abort();
      await reading;
      const deadline = Date.now() + 10_000;
      while ((!aborted || (await strayFiles()).length > 0) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(aborted).toBe(true);
      expect(await strayFiles()).toEqual([]);
    } finally {
      convert = loadedConvertEngine;
    }
  });
});
