/**
 * `npm run bench:runner`: the runner against llama.cpp's own server, side by side in one run (DESIGN.md targets:
 * single stream ≥ 0.97 of llama-server; aggregate with 4, 8, 32 streams ≥ llama-server with the same -np).
 *   - throughput: a 26M-param F16 llama (written here), THREADS=1, 1/4/8/32 concurrent streams, through the runner
 *     (PARALLEL=32) and through `llama-server -t 1 -np 32` (built once from node-llama-cpp's bundled source into
 *     .corral/llama-ref; BENCH_LLAMA_SERVER=<path> uses another binary), their rounds alternating. With a native
 *     node-llama-cpp build present (`npm run build:native`) the runner is measured on it and, with its build folder
 *     set aside, on the prebuilt binaries too. Beside each build, node-llama-cpp alone with the runner's settings (scripts/bench-runner-bare.ts,
 *     with and without the decode gate): bare vs llama-server is the engine loop's gap, runner vs bare what the
 *     runner adds (HTTP, NDJSON, templates, metering).
 *   - overhead: the runner's own CPU per streamed token on its Node main thread (NDJSON framing, HTTP writes, stop
 *     strings, metering), on the built-in tiny model where inference is negligible, at 1 and 64 streams.
 *   - prompt cache: time to first token of a follow-up over a ~2,000-token history against the first turn, with
 *     other requests on the same model in between.
 * Env: BENCH_TOKENS (128), BENCH_STREAMS (1,4,8,32), BENCH_PARTS (throughput,overhead,cache), BENCH_MODEL (26m, or
 * 110m for the throughput part: ~4× longer forward passes, so a fixed per-token cost weighs ~4× less).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { OLLAMA_DEFAULTS } from "../gpu-runner/src/inference/options";
import { writeTinyModel } from "../gpu-runner/src/tiny-model";
import { type RunningStack, startStack } from "../test/harness";
import type { StepTimes } from "./forward-pass-timer";
import { benchModel, benchModelSize, llamaRefBinary } from "./llama-ref";
import { nativeBuildDir, nativeBuildReady } from "./native-build";
import { DEFAULTS, silentProgress, uploadFile } from "./upload-lib";

const root = resolve(import.meta.dirname, "..");
const TOKENS = Number(process.env.BENCH_TOKENS ?? 128);
const STREAMS = (process.env.BENCH_STREAMS ?? "1,4,8,32").split(",").map(Number);
const PARTS = new Set((process.env.BENCH_PARTS ?? "throughput,overhead,cache").split(","));
const MAX_STREAMS = Math.max(...STREAMS);
const MODEL = benchModelSize(process.env.BENCH_MODEL ?? "26m");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

interface Generated {
  tokens: number;
  /** The final line's prompt_eval_count and prompt_cached_count (runner only). */
  promptTokens?: number;
  cachedTokens?: number;
  /** ms from sending to the first streamed token. */
  ttftMs: number;
  text: string;
  /** llama-server only: its own ms per generated token (timings.predicted_per_token_ms). */
  msPerToken?: number;
}
type Generate = (prompt: string, maxTokens: number) => Promise<Generated>;

/** Alternations of the engines per stream count: one stream is short and noisy, so it gets more. */
const ROUNDS = (n: number) => (n === 1 ? 5 : n <= 8 ? 3 : 2);

/**
 * tok/s by engine and stream count, the engines' rounds alternating (A B A B …) so that both see the same machine:
 * on this shared VM a forward pass's time drifts by ±25% over minutes, far more than the differences measured.
 * Each round runs N concurrent streams; the figure is the median round's total tokens over its wall time. When
 * an engine's answers carry their own ms per token (llama-server), `msPerToken` gets their median by stream count.
 */
async function sideBySide(
  engines: Record<string, Generate>,
  msPerToken?: Record<string, number>,
): Promise<Record<string, Record<string, number>>> {
  for (const generate of Object.values(engines)) await generate("warm up", 16);
  const rates: Record<string, Record<string, number>> = Object.fromEntries(Object.keys(engines).map((e) => [e, {}]));
  for (const n of STREAMS) {
    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(engines).map((e) => [e, []]));
    const perToken: number[] = [];
    for (let r = 0; r < ROUNDS(n); r++) {
      for (const [engine, generate] of Object.entries(engines)) {
        const t0 = performance.now();
        const done = await Promise.all(Array.from({ length: n }, (_, i) => generate(`Tell me ${r}-${i}`, TOKENS)));
        samples[engine]?.push(done.reduce((sum, g) => sum + g.tokens, 0) / ((performance.now() - t0) / 1000));
        for (const g of done) if (g.msPerToken !== undefined) perToken.push(g.msPerToken);
      }
    }
    for (const engine of Object.keys(engines)) (rates[engine] ?? {})[`${n}`] = round(median(samples[engine] ?? []));
    if (msPerToken && perToken.length) msPerToken[`${n}`] = round(median(perToken), 3);
  }
  return rates;
}

/** Reads NDJSON from the runner: the first `response` chunk's arrival and the final chunk's counts. */
async function readStream(res: Response, sent: number): Promise<Generated> {
  if (!res.ok || !res.body) throw new Error(`runner answered ${res.status}: ${await res.text()}`);
  let ttftMs = Number.NaN;
  let text = "";
  let tokens = 0;
  let promptTokens = 0;
  let cachedTokens = 0;
  let buffered = "";
  const decoder = new TextDecoder();
  for await (const bytes of res.body) {
    buffered += decoder.decode(bytes as Uint8Array, { stream: true });
    let nl = buffered.indexOf("\n");
    while (nl >= 0) {
      const line = JSON.parse(buffered.slice(0, nl)) as {
        response?: string;
        done?: boolean;
        eval_count?: number;
        prompt_eval_count?: number;
        prompt_cached_count?: number;
      };
      buffered = buffered.slice(nl + 1);
      if (line.response) {
        if (Number.isNaN(ttftMs)) ttftMs = performance.now() - sent;
        text += line.response;
      }
      if (line.done) {
        tokens = line.eval_count ?? 0;
        promptTokens = line.prompt_eval_count ?? 0;
        cachedTokens = line.prompt_cached_count ?? 0;
      }
      nl = buffered.indexOf("\n");
    }
  }
  return { tokens, ttftMs, text, promptTokens, cachedTokens };
}

/** A stack whose runner serves `gguf` as model "bench"; requests go straight to the runner, as the edge sends them. */
async function benchStack(gguf: Uint8Array, env: Record<string, string>) {
  const stack = await startStack({ env: { THREADS: "1", ...env } });
  const auth = { authorization: `Bearer ${stack.key}` };
  // As a user uploads it (the 110M model is over the single-request limit: multipart).
  const file = join(stack.stateDir, "bench.gguf");
  writeFileSync(file, gguf);
  const options = { ...DEFAULTS, host: stack.url, key: stack.key, file, stateDir: join(stack.stateDir, "uploads") };
  const { digest: blob } = await uploadFile(options, fetch, silentProgress);
  const created = await fetch(`${stack.url}/api/create`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify({ model: "bench", files: { "bench.gguf": blob }, stream: false }),
  });
  if (!created.ok) throw new Error(`create: ${await created.text()}`);
  const { runner_secret } = JSON.parse(readFileSync(join(stack.stateDir, "dev.json"), "utf8")) as {
    runner_secret: string;
  };
  const { models } = (await (await fetch(`${stack.url}/api/tags`, { headers: auth })).json()) as {
    models: { name: string; digest: string }[];
  };
  const digest = models.find((m) => m.name.startsWith("bench"))?.digest ?? "";
  const generate: Generate = async (prompt, maxTokens) => {
    const sent = performance.now();
    const res = await fetch(`http://127.0.0.1:${stack.runnerPorts[0]}/v1/generate`, {
      method: "POST",
      headers: { authorization: `Bearer ${runner_secret}` },
      body: JSON.stringify({
        request_id: crypto.randomUUID(),
        model: { name: "bench", digest, model_blob: blob, model_size: gguf.byteLength },
        request: { model: "bench", prompt, raw: true, stream: true, options: { num_predict: maxTokens, seed: 1 } },
      }),
    });
    return readStream(res, sent);
  };
  return { stack, generate };
}

/**
 * Ollama's default sampling, which the runner applies to the bench's requests, given to llama-server too (its
 * /completion takes the same field names): both engines then draw from the same distributions.
 */
const RUNNER_SAMPLING = OLLAMA_DEFAULTS;

/** llama-server with `-np MAX_STREAMS`, threads 1, on `modelPath`; `stop` kills it. */
async function startLlamaServer(binary: string, modelPath: string): Promise<{ generate: Generate; stop(): void }> {
  const port = 28555;
  const np = String(MAX_STREAMS);
  const args = ["-m", modelPath, "-t", "1", "-c", String(512 * MAX_STREAMS), "-np", np, "--port", String(port)];
  const server: ChildProcess = spawn(binary, [...args, "--host", "127.0.0.1"], { stdio: "ignore", detached: true });
  const stop = () => {
    if (server.pid) process.kill(-server.pid, "SIGKILL");
  };
  for (;;) {
    const up = await fetch(`http://127.0.0.1:${port}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (server.exitCode !== null) throw new Error(`llama-server exited with ${server.exitCode}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  const generate: Generate = async (prompt, maxTokens) => {
    const sent = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}/completion`, {
      method: "POST",
      body: JSON.stringify({ prompt, n_predict: maxTokens, cache_prompt: false, seed: 1, ...RUNNER_SAMPLING }),
    });
    const { timings, content } = (await res.json()) as {
      timings: { predicted_n: number; predicted_per_token_ms: number };
      content: string;
    };
    const msPerToken = timings.predicted_per_token_ms;
    return { tokens: timings.predicted_n, ttftMs: performance.now() - sent, text: content, msPerToken };
  };
  return { generate, stop };
}

/**
 * node-llama-cpp alone with the runner's settings (scripts/bench-runner-bare.ts), in its own process: tok/s, and
 * each stream count's forward pass and time between passes.
 */
function throughBare(
  modelPath: string,
  gate: boolean,
): { rates: Record<string, number>; steps: Record<string, StepTimes> } {
  const out = execFileSync(
    process.execPath,
    ["--import", "tsx", join(root, "scripts", "bench-runner-bare.ts"), modelPath],
    {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      env: {
        ...process.env,
        STREAMS: STREAMS.join(","),
        TOKENS: String(TOKENS),
        PARALLEL: String(MAX_STREAMS),
        NUM_CTX: "512",
        GATE: gate ? "1" : "0",
      },
    },
  );
  return JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as {
    rates: Record<string, number>;
    steps: Record<string, StepTimes>;
  };
}

/** CPU seconds (user + system) of one thread, from /proc: the runner's Node main thread has tid = pid. */
function threadCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** The runner's node process: the launcher records its process group leader (tsx), whose child is the runner. */
function runnerNodePid(stack: RunningStack): number {
  const { runners } = JSON.parse(readFileSync(join(stack.stateDir, "runners.json"), "utf8")) as {
    runners: { pid: number }[];
  };
  const leader = runners[0]?.pid ?? 0;
  const children = execFileSync("pgrep", ["-P", String(leader)], { encoding: "utf8" })
    .trim()
    .split("\n");
  return Number(children.at(-1) ?? leader);
}

async function overhead() {
  const { stack, generate } = await benchStack(writeTinyModel({ seed: 4242 }), { PARALLEL: "64", NUM_CTX: "256" });
  try {
    const pid = runnerNodePid(stack);
    await generate("warm up", 16);
    const result: Record<string, { tokens: number; cpu_us_per_token: number; max_tok_s_per_process: number }> = {};
    for (const n of [1, 64]) {
      const before = threadCpuSeconds(pid);
      const rounds = n === 1 ? 16 : 2;
      let tokens = 0;
      for (let r = 0; r < rounds; r++) {
        const done = await Promise.all(Array.from({ length: n }, (_, i) => generate(`overhead ${r}-${i}`, 200)));
        tokens += done.reduce((sum, g) => sum + g.tokens, 0);
      }
      const usPerToken = ((threadCpuSeconds(pid) - before) * 1e6) / tokens;
      result[`${n}_streams`] = {
        tokens,
        cpu_us_per_token: round(usPerToken),
        max_tok_s_per_process: Math.round(1e6 / usPerToken),
      };
    }
    return result;
  } finally {
    await stack.stop();
  }
}

/** ~2,000 tokens of text the bench tokenizer splits into about one token per character group. */
const history = (seed: number) => Array.from({ length: 700 }, (_, i) => `w${(i * 7919 + seed) % 997}`).join(" ");

async function promptCache(gguf: Uint8Array) {
  const { stack, generate } = await benchStack(gguf, { PARALLEL: "4", NUM_CTX: "4096" });
  try {
    await generate("warm up", 4);
    const turn1Prompt = `${history(1)}\nQ: first?\nA:`;
    const turn1 = await generate(turn1Prompt, 16);
    // Other tenants' requests on the same model in between, on the other sequences.
    await Promise.all([2, 3, 4].map((s) => generate(`${history(s)}\nQ: other?\nA:`, 16)));
    const turn2 = await generate(`${turn1Prompt}${turn1.text}\nQ: second?\nA:`, 16);
    return {
      history_chars: turn1Prompt.length,
      turn1_ttft_ms: round(turn1.ttftMs),
      turn2_ttft_ms: round(turn2.ttftMs),
      ratio: round(turn2.ttftMs / turn1.ttftMs, 3),
      turn2_prompt_eval_count: turn2.promptTokens,
      turn2_prompt_cached_count: turn2.cachedTokens,
    };
  } finally {
    await stack.stop();
  }
}

/** Runs `fn` with the native build folder set aside, so node-llama-cpp falls back to its prebuilt binaries. */
async function withPrebuilt<T>(fn: () => Promise<T>): Promise<T> {
  const dir = nativeBuildDir();
  if (!nativeBuildReady()) return fn();
  const aside = `${dir}.aside`;
  renameSync(dir, aside);
  try {
    return await fn();
  } finally {
    renameSync(aside, dir);
  }
}

async function main() {
  const report: Record<string, unknown> = {
    model: `${MODEL.toUpperCase()}-param llama, F16, threads 1`,
    tokens_per_request: TOKENS,
    load_average_at_start: loadavg().map((x) => round(x, 2)),
  };
  if (PARTS.has("throughput")) {
    const binary = process.env.BENCH_LLAMA_SERVER ?? llamaRefBinary("llama-server");
    const gguf = benchModel(MODEL);
    const modelPath = join(root, ".corral", `bench-${MODEL}.gguf`);
    mkdirSync(dirname(modelPath), { recursive: true });
    writeFileSync(modelPath, gguf);
    const server = await startLlamaServer(binary, modelPath);
    // Each build: node-llama-cpp alone (with and without the decode gate), then the runner on it and llama-server,
    // their rounds alternating.
    const measure = async () => {
      const bare = throughBare(modelPath, false).rates;
      const { rates: bareGated, steps } = throughBare(modelPath, true);
      const { stack, generate } = await benchStack(gguf, { PARALLEL: String(MAX_STREAMS), NUM_CTX: "512" });
      const serverMsPerToken: Record<string, number> = {};
      try {
        const rates = await sideBySide({ llama_server: server.generate, runner: generate }, serverMsPerToken);
        const anchor = rates.llama_server ?? {};
        const runner = rates.runner ?? {};
        const ratios = (of: Record<string, number>, to = anchor) =>
          Object.fromEntries(STREAMS.map((n) => [`${n}`, round((of[`${n}`] ?? 0) / (to[`${n}`] ?? 1), 2)]));
        return {
          llama_server: anchor,
          // llama-server's own ms per generated token, per stream (a step's whole time, its sampling included).
          llama_server_ms_per_token: serverMsPerToken,
          runner,
          runner_ratio: ratios(runner),
          node_llama_cpp: bare,
          node_llama_cpp_ratio: ratios(bare),
          node_llama_cpp_with_gate: bareGated,
          // ms per step: the forward pass, and node-llama-cpp's sampling and JS round trip between two passes.
          node_llama_cpp_with_gate_steps: steps,
          runner_vs_node_llama_cpp_with_gate: ratios(runner, bareGated),
        };
      } finally {
        await stack.stop();
      }
    };
    try {
      report.throughput_tok_s = {
        streams: STREAMS,
        native: nativeBuildReady() ? await measure() : "not built (npm run build:native)",
        prebuilt: await withPrebuilt(measure),
      };
    } finally {
      server.stop();
    }
  }
  if (PARTS.has("overhead")) report.runner_overhead = await overhead();
  if (PARTS.has("cache")) report.prompt_cache = await promptCache(benchModel());
  report.load_average_at_end = loadavg().map((x) => round(x, 2));
  console.log(JSON.stringify(report, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
