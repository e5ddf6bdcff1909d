/**
 * Test helpers shared by the runner's tests: a tiny blob server speaking the edge's /internal/blobs route,
 * the built-in models as blobs, and one llama.cpp instance pinned to a single CPU thread.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResolvedModel, RunnerStatus } from "@corral/protocol/runner";
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import { BlobCache } from "./blob-cache";
import { EdgeBlobSource } from "./blob-source";
import { systemClock } from "./clock";
import { RunnerMetrics } from "./metrics";
import { ModelPool } from "./model-pool";
import { createRunnerServer, type RunnerServer, type RunnerServerDeps } from "./server";
import { writeScriptedModel, writeTinyModel } from "./tiny-model/index";

export const TEST_SECRET = "test-secret";

export interface TestBlob {
  digest: string;
  bytes: Uint8Array;
}

export function blobOf(bytes: Uint8Array): TestBlob {
  return { digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`, bytes };
}

export interface BlobServer {
  url: string;
  /** GETs received, by digest, with their Range header. */
  requests: { digest: string; range?: string }[];
  /** Bodies of POST /internal/runners/heartbeat (answered `{ok: true, draining: false}`). */
  heartbeats: unknown[];
  blobs: Map<string, Uint8Array>;
  close(): Promise<void>;
}

/**
 * Serves `/internal/blobs/:digest` like the edge (Bearer secret, Range → 206). `honourRanges: false` answers
 * every request with the whole blob; `corrupt` serves other bytes for one digest; `delayMs` slows each answer.
 */
export async function startBlobServer(
  blobs: TestBlob[],
  options: { honourRanges?: boolean; corrupt?: string; delayMs?: number } = {},
): Promise<BlobServer> {
  const map = new Map(blobs.map((b) => [b.digest, b.bytes]));
  const requests: BlobServer["requests"] = [];
  const heartbeats: unknown[] = [];
  const server = createServer(async (req, res) => {
    if (req.headers.authorization !== `Bearer ${TEST_SECRET}`) {
      res.writeHead(401).end();
      return;
    }
    if (req.method === "POST" && req.url === "/internal/runners/heartbeat") {
      let text = "";
      for await (const chunk of req) text += chunk;
      heartbeats.push(JSON.parse(text));
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true,"draining":false}');
      return;
    }
    const digest = decodeURIComponent((req.url ?? "").replace(/^\/internal\/blobs\//, ""));
    requests.push({ digest, range: req.headers.range });
    if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    let bytes = map.get(digest);
    if (!bytes) {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
      return;
    }
    if (options.corrupt === digest) bytes = bytes.map((b) => b ^ 0xff);
    const match = options.honourRanges === false ? null : /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (match) {
      const start = Number(match[1]);
      const end = Math.min(Number(match[2]), bytes.length - 1);
      res.writeHead(206, {
        "content-range": `bytes ${start}-${end}/${bytes.length}`,
        "content-length": end - start + 1,
      });
      res.end(bytes.subarray(start, end + 1));
      return;
    }
    res.writeHead(200, { "content-length": bytes.length }).end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    heartbeats,
    blobs: map,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let tiny: TestBlob | undefined;
let sentence: TestBlob | undefined;
let tool: TestBlob | undefined;

/** The built-in gibberish model (seed 42). */
export const tinyModelBlob = () => (tiny ??= blobOf(writeTinyModel({})));
/** Greedy decoding says "The quick brown fox jumps over the lazy dog." */
export const sentenceModelBlob = () => (sentence ??= blobOf(writeScriptedModel("sentence")));
/** Greedy decoding emits a Hermes `<tool_call>` for get_weather(city=Paris). */
export const toolModelBlob = () => (tool ??= blobOf(writeScriptedModel("tool")));

let llama: Promise<Llama> | undefined;

/** CPU only, one thread, prebuilt binaries: light enough for a 2-core CI machine. */
export function testLlama(): Promise<Llama> {
  llama ??= getLlama({ gpu: false, build: "never", maxThreads: 1, logLevel: LlamaLogLevel.error });
  return llama;
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies are free-form JSON read field by field.
export type Body = Record<string, any>;

export interface TestRunner {
  base: string;
  /** The runner's blob cache directory. */
  dir: string;
  runner: RunnerServer;
  pool: ModelPool;
  blobServer: BlobServer;
  post(path: string, model: ResolvedModel, request: Record<string, unknown>, init?: RequestInit): Promise<Response>;
  /** POST with `stream: false` (unless the request says otherwise) and the parsed JSON answer. */
  json(path: string, model: ResolvedModel, request: Record<string, unknown>): Promise<{ status: number; body: Body }>;
  status(): Promise<RunnerStatus>;
  stop(): Promise<void>;
}

/**
 * A runner on an ephemeral port serving the built-in models (2 sequences, num_ctx 512, one thread); `announceModels`
 * stands in for the heartbeat's pulse.
 */
export async function startTestRunner(
  extra: Pick<RunnerServerDeps, "announceModels" | "sink" | "quantize" | "convert" | "threads"> & {
    /** More blobs the stand-in edge serves (a checkpoint's files for convert jobs). */
    blobs?: TestBlob[];
  } = {},
): Promise<TestRunner> {
  const { blobs: moreBlobs = [], ...deps } = extra;
  const dir = await mkdtemp(join(tmpdir(), "corral-runner-"));
  const blobServer = await startBlobServer([tinyModelBlob(), sentenceModelBlob(), toolModelBlob(), ...moreBlobs]);
  const blobs = new BlobCache({ dir, maxBytes: 1 << 30, source: new EdgeBlobSource(blobServer.url, TEST_SECRET) });
  await blobs.init();
  const llama = await testLlama();
  const pool = new ModelPool({ llama, blobs, threads: 1, parallel: 2, defaultNumCtx: 512, memoryBudgetBytes: 1 << 30 });
  const runner = createRunnerServer({
    secret: TEST_SECRET,
    pool,
    blobs,
    llama,
    clock: systemClock,
    metrics: new RunnerMetrics(),
    identity: { id: "test-runner", url: "http://127.0.0.1:1", parallel: 2, memoryBudgetBytes: 1 << 30 },
    ...deps,
  });
  const address = await runner.listen(0, "127.0.0.1");
  const base = `http://127.0.0.1:${address.port}`;
  let nextId = 0;
  const post = (path: string, model: ResolvedModel, request: Record<string, unknown>, init: RequestInit = {}) =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_SECRET}`, "content-type": "application/json" },
      body: JSON.stringify({ request_id: `r${nextId++}`, model, request }),
      ...init,
    });
  return {
    base,
    dir,
    runner,
    pool,
    blobServer,
    post,
    async json(path, model, request) {
      const res = await post(path, model, { stream: false, ...request });
      return { status: res.status, body: (await res.json()) as Body };
    },
    async status() {
      const res = await fetch(`${base}/v1/ps`, { headers: { authorization: `Bearer ${TEST_SECRET}` } });
      return (await res.json()) as RunnerStatus;
    },
    async stop() {
      await runner.close();
      await pool.dispose();
      await blobServer.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function resolvedModel(blob: TestBlob, name: string, extra: Partial<ResolvedModel> = {}): ResolvedModel {
  return {
    name,
    digest: `sha256:${"a".repeat(64)}`,
    model_blob: blob.digest,
    model_size: blob.bytes.length,
    adapters: [],
    params: {},
    messages: [],
    ...extra,
  };
}

/** Every NDJSON line of a streamed answer, parsed. */
export async function ndjsonLines(res: Response): Promise<Body[]> {
  return (await res.text())
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Body);
}

/**
 * A Go template in the style of Ollama's qwen2.5 library template (ChatML, Hermes tool calls), to create models
 * whose prompts go through the Go template engine instead of the GGUF's Jinja template.
 */
export const QWEN_STYLE_TEMPLATE = `{{- if .Messages }}
{{- if or .System .Tools }}<|im_start|>system
{{- if .System }}
{{ .System }}
{{- end }}
{{- if .Tools }}

# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{{- range .Tools }}
{"type": "function", "function": {{ .Function }}}
{{- end }}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call>
{{- end }}<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{ if .Content }}{{ .Content }}
{{- else if .ToolCalls }}<tool_call>
{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}
{{ end }}</tool_call>
{{- end }}{{ if not $last }}<|im_end|>
{{ end }}
{{- else if eq .Role "tool" }}<|im_start|>user
<tool_response>
{{ .Content }}
</tool_response><|im_end|>
{{ end }}
{{- if and (ne .Role "assistant") $last }}<|im_start|>assistant
{{ end }}
{{- end }}
{{- else }}
{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{ if .Prompt }}<|im_start|>user
{{ .Prompt }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ end }}{{ .Response }}{{ if .Response }}<|im_end|>{{ end }}`;
