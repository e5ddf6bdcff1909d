/**
 * `npm run bench:runner`: the runner against llama.cpp's own server on the same GGUF and thread count (DESIGN.md:
 * single-stream tokens/s ≥ 95% of llama-server's; aggregate with parallel sequences should beat it).
 *   - Builds llama-server once from the llama.cpp source bundled in node-llama-cpp (offline; ~10 min on 2 cores)
 *     into .corral/llama-ref (BENCH_LLAMA_SERVER=<path> uses an existing binary instead).
 *   - Writes a 26M-parameter llama GGUF with the built-in tokenizer (big enough that the model, not per-token
 *     overhead, dominates), serves it through the stack's runner (THREADS=1) and through `llama-server -t 1 -np 4`.
 *   - Reports the median single-stream generation rate and the aggregate rate of 4 concurrent requests.
 * Env: BENCH_TOKENS (128).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startStack } from "../test/harness";
import { benchModel, llamaRefBinary } from "./llama-ref";

const root = resolve(import.meta.dirname, "..");
const TOKENS = Number(process.env.BENCH_TOKENS ?? 128);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const round = (x: number) => Math.round(x * 10) / 10;

interface Rates {
  single_tok_s: number;
  aggregate4_tok_s: number;
}

async function measure(one: (i: number) => Promise<{ tokens: number; tokPerS: number }>): Promise<Rates> {
  await one(0);
  const single: number[] = [];
  for (let i = 1; i <= 5; i++) single.push((await one(i)).tokPerS);
  const t0 = performance.now();
  const parallel = await Promise.all([1, 2, 3, 4].map((i) => one(100 + i)));
  const seconds = (performance.now() - t0) / 1000;
  return {
    single_tok_s: round(median(single)),
    aggregate4_tok_s: round(parallel.reduce((a, r) => a + r.tokens, 0) / seconds),
  };
}

async function throughRunner(gguf: Uint8Array): Promise<Rates> {
  const blob = `sha256:${createHash("sha256").update(gguf).digest("hex")}`;
  const stack = await startStack({ env: { THREADS: "1" } });
  try {
    const auth = { authorization: `Bearer ${stack.key}` };
    await fetch(`${stack.url}/api/blobs/${blob}`, { method: "POST", headers: auth, body: gguf });
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
    return await measure(async (i) => {
      const res = await fetch(`http://127.0.0.1:${stack.runnerPorts[0]}/v1/generate`, {
        method: "POST",
        headers: { authorization: `Bearer ${runner_secret}` },
        body: JSON.stringify({
          request_id: crypto.randomUUID(),
          model: { name: "bench", digest, model_blob: blob, model_size: gguf.byteLength },
          request: {
            model: "bench",
            prompt: `Tell me ${i}`,
            raw: true,
            stream: false,
            options: { num_predict: TOKENS },
          },
        }),
      });
      const r = (await res.json()) as { eval_count: number; eval_duration: number };
      return { tokens: r.eval_count, tokPerS: r.eval_count / (r.eval_duration / 1e9) };
    });
  } finally {
    await stack.stop();
  }
}

async function throughLlamaServer(binary: string, modelPath: string): Promise<Rates> {
  const port = 28555;
  const args = ["-m", modelPath, "-t", "1", "-c", "4096", "-np", "4", "--host", "127.0.0.1", "--port", String(port)];
  const server: ChildProcess = spawn(binary, args, { stdio: "ignore", detached: true });
  try {
    for (;;) {
      const up = await fetch(`http://127.0.0.1:${port}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    return await measure(async (i) => {
      const res = await fetch(`http://127.0.0.1:${port}/completion`, {
        method: "POST",
        body: JSON.stringify({ prompt: `Tell me ${i}`, n_predict: TOKENS, cache_prompt: false }),
      });
      const { timings } = (await res.json()) as { timings: { predicted_n: number; predicted_per_second: number } };
      return { tokens: timings.predicted_n, tokPerS: timings.predicted_per_second };
    });
  } finally {
    if (server.pid) process.kill(-server.pid, "SIGKILL");
  }
}

async function main() {
  const binary = process.env.BENCH_LLAMA_SERVER ?? llamaRefBinary("llama-server");
  const gguf = benchModel();
  const modelPath = join(root, ".corral", "bench-26m.gguf");
  writeFileSync(modelPath, gguf);
  const runner = await throughRunner(gguf);
  const llama = await throughLlamaServer(binary, modelPath);
  console.log(
    JSON.stringify(
      {
        model: "26M-param llama, F16, threads 1",
        runner,
        llama_server: llama,
        single_ratio: round((runner.single_tok_s / llama.single_tok_s) * 100) / 100,
        aggregate_ratio: round((runner.aggregate4_tok_s / llama.aggregate4_tok_s) * 100) / 100,
      },
      null,
      2,
    ),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
