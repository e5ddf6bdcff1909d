/**
 * `npm run bench:coldstart`: what a first user waits for when no runner has the model (a fleet at GPU_FLEET_MIN=0
 * that just got its instance, or a runner new to the model), from the request to the first token, split into
 * blob fetch, verify, load and first token. Through the local stack (edge + one runner, THREADS=1), for the tiny
 * model and a ~500 MB synthetic llama GGUF (F16, random weights).
 *
 * How each phase is taken, all from the stack's own answers except the hash:
 *   - cold request (empty blob cache, nothing loaded): client time to first token, and the runner's load_duration
 *     (blob fetch + sha256 verify + load);
 *   - warm-cache request (blob cached, model unloaded by keep_alive 0): load_duration = load alone;
 *   - fetch + verify = cold load_duration − warm load_duration; verify = sha256 of the same bytes here (the runner
 *     hashes inline as bytes arrive, so fetch = the rest);
 *   - first token = cold time to first token − cold load_duration (scheduling, prompt and one token).
 * The expected figures on a GPU instance are in infra/README.md ("Cold start").
 */
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeTinyModel } from "../gpu-runner/src/tiny-model";
import { writeRandomLlamaModel } from "../gpu-runner/src/tiny-model/random-llama";
import { type RunningStack, startStack } from "../test/harness";
import { DEFAULTS, silentProgress, uploadFile } from "./upload-lib";

const root = resolve(import.meta.dirname, "..");
const dir = join(root, ".corral", "bench-coldstart");
const ms = (ns: number) => Math.round(ns / 1e5) / 10;

interface BenchModel {
  name: string;
  bytes: () => Uint8Array;
}

const MODELS: BenchModel[] = [
  { name: "tiny", bytes: () => writeTinyModel() },
  {
    // 16 layers of width 1024 (F16): ~243M parameters, ~490 MB.
    name: "synthetic-500mb",
    bytes: () =>
      writeRandomLlamaModel({
        name: "corral-coldstart-500mb",
        description: "corral cold start benchmark model, random weights",
        hyperparameters: { embedding: 1024, layers: 16, heads: 16, kvHeads: 4, feedForward: 4096 },
      }),
  },
];

interface FirstToken {
  ttftMs: number;
  loadNs: number;
  promptEvalNs: number;
}

/** One streamed generate; the time to the first token chunk and the final chunk's durations. */
async function generate(stack: RunningStack, model: string): Promise<FirstToken> {
  const started = performance.now();
  const res = await fetch(`${stack.url}/api/generate`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.key}` },
    body: JSON.stringify({ model, prompt: "Once", keep_alive: 0, options: { num_predict: 4, temperature: 0 } }),
  });
  if (!res.ok || !res.body) throw new Error(`generate ${model}: ${res.status} ${await res.text()}`);
  let ttftMs = Number.NaN;
  let text = "";
  for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) {
    if (Number.isNaN(ttftMs)) ttftMs = performance.now() - started;
    text += chunk;
  }
  const last = JSON.parse(text.trim().split("\n").at(-1) ?? "{}") as {
    load_duration?: number;
    prompt_eval_duration?: number;
    error?: string;
  };
  if (last.error) throw new Error(`generate ${model}: ${last.error}`);
  return { ttftMs, loadNs: last.load_duration ?? 0, promptEvalNs: last.prompt_eval_duration ?? 0 };
}

async function coldStart(stack: RunningStack, model: BenchModel) {
  const bytes = model.bytes();
  const file = join(dir, `${model.name}.gguf`);
  writeFileSync(file, bytes);
  const hashStarted = performance.now();
  createHash("sha256").update(bytes).digest("hex");
  const verifyMs = performance.now() - hashStarted;

  const options = { ...DEFAULTS, host: stack.url, key: stack.key, file, stateDir: dir, createModel: model.name };
  await uploadFile(options, (url, init) => fetch(url, init), silentProgress);

  const cold = await generate(stack, model.name);
  const warm = await generate(stack, model.name);
  const fetchAndVerifyMs = ms(cold.loadNs - warm.loadNs);
  return {
    model: model.name,
    size_mb: Math.round(bytes.byteLength / 1e5) / 10,
    blob_fetch_ms: Math.round(fetchAndVerifyMs - verifyMs),
    verify_ms: Math.round(verifyMs),
    load_ms: ms(warm.loadNs),
    first_token_ms: Math.round(cold.ttftMs - ms(cold.loadNs)),
    total_to_first_token_ms: Math.round(cold.ttftMs),
    prompt_eval_ms: ms(cold.promptEvalNs),
  };
}

async function main() {
  mkdirSync(dir, { recursive: true });
  const stack = await startStack({ env: { THREADS: "1" } });
  try {
    const results = [];
    for (const model of MODELS) results.push(await coldStart(stack, model));
    console.log(JSON.stringify({ stack: "local (wrangler dev edge, 1 runner, THREADS=1, CPU)", results }, null, 2));
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
