/**
 * `npm run bench:vision`: an image's encode time (ViT + projector) in the runner's vision path (the supervised
 * llama-server), side by side with llama.cpp's own `llama-mtmd-cli` built from the same source (the anchor), on
 * the 26M benchmark model with a seeded projector whose tower is big enough for the encode to show (BENCH_VISION).
 * llama-server reports no encode time, so the runner's is measured as prompt time with the image minus prompt time
 * of a text prompt exactly as long (the same text, padded with token ids to the image's positions), run back to
 * back with a fresh image each run: both decode the same number of positions, the difference is the encode. The
 * median over BENCH_RUNS pairs. llama-mtmd-cli reports the encode itself ("mtmd batch encoding done in N ms").
 * Env: BENCH_THREADS (1: on a shared machine, llama.cpp's spinning threads time the queue rather than the work),
 * BENCH_RUNS (5), BENCH_LLAMA_SERVER / BENCH_LLAMA_MTMD_CLI (default: built once into .corral/llama-ref).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type VisionShape, visionPositions, writeTinyProjector } from "../gpu-runner/src/tiny-model/clip-projector";
import { noisePng } from "../gpu-runner/src/tiny-model/png";
import { LlamaServerProcess, MEDIA_MARKER } from "../gpu-runner/src/vision/llama-server";
import { benchModel, llamaRefBinary } from "./llama-ref";

const THREADS = Number(process.env.BENCH_THREADS ?? 1);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const TEXT = "Describe the picture in one short sentence, please.";
/** A small ViT (64 positions of a 112×112 image, 6 blocks 192 wide), feeding the 512-wide benchmark model. */
const BENCH_VISION: VisionShape = {
  embedding: 192,
  heads: 3,
  feedForward: 768,
  layers: 6,
  imageSize: 112,
  patchSize: 14,
};

async function promptMs(server: LlamaServerProcess, prompt: unknown): Promise<{ ms: number; tokens: number }> {
  const body = { prompt, n_predict: 1, temperature: 0, cache_prompt: false };
  for await (const event of server.completion(body, AbortSignal.timeout(120_000))) {
    if (event.stop !== true) continue;
    const timings = event.timings as { prompt_ms: number };
    return { ms: timings.prompt_ms, tokens: Number(event.tokens_evaluated) };
  }
  throw new Error("no final event");
}

/** The text's token ids, padded with its last token to `length` positions. */
async function paddedTokens(server: LlamaServerProcess, length: number): Promise<number[]> {
  const res = await fetch(`${server.url}/tokenize`, { method: "POST", body: JSON.stringify({ content: TEXT }) });
  const { tokens } = (await res.json()) as { tokens: number[] };
  return [...tokens, ...Array<number>(Math.max(0, length - tokens.length)).fill(tokens.at(-1) ?? 0)];
}

/** The runner's path: prompt ms with the image and of the same-length text, and the paired encode estimate. */
async function runnerFigures(dir: string) {
  const startedAt = performance.now();
  const server = await LlamaServerProcess.start({
    binary: process.env.BENCH_LLAMA_SERVER ?? llamaRefBinary("llama-server"),
    modelPath: join(dir, "model.gguf"),
    projectorPath: join(dir, "mmproj.gguf"),
    contextSize: 1024,
    parallel: 1,
    threads: THREADS,
  });
  const startMs = performance.now() - startedAt;
  try {
    const withImage: number[] = [];
    const sameLength: number[] = [];
    const encode: number[] = [];
    let tokens = { image: 0, text: 0 };
    for (let run = 0; run < RUNS; run++) {
      const image = noisePng(100 + run).toString("base64");
      const a = await promptMs(server, { prompt_string: `${MEDIA_MARKER}${TEXT}`, multimodal_data: [image] });
      const b = await promptMs(server, await paddedTokens(server, a.tokens));
      withImage.push(a.ms);
      sameLength.push(b.ms);
      // Paired, back to back: a slow moment on a shared machine inflates both halves of one pair.
      encode.push(a.ms - b.ms);
      tokens = { image: a.tokens, text: b.tokens };
    }
    return { withImage: median(withImage), sameLength: median(sameLength), encode: median(encode), tokens, startMs };
  } finally {
    await server.dispose();
  }
}

/**
 * llama-mtmd-cli's own encode time per image, median over RUNS; a fresh process per run, warmed up first (its
 * warm-up is outside the timed encode), as the runner's long-lived server is warm after its first image.
 */
function mtmdCliEncodeMs(dir: string): number {
  const binary = process.env.BENCH_LLAMA_MTMD_CLI ?? llamaRefBinary("llama-mtmd-cli");
  const times: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const image = join(dir, `image-${run}.png`);
    writeFileSync(image, noisePng(100 + run));
    const args = ["-m", join(dir, "model.gguf"), "--mmproj", join(dir, "mmproj.gguf"), "--image", image];
    args.push("-p", TEXT, "-n", "1", "-c", "1024", "-t", String(THREADS), "--temp", "0");
    const cli = spawnSync(binary, args, { encoding: "utf8" });
    const reported = /mtmd batch encoding done in (\d+) ms/.exec(cli.stderr);
    if (cli.status !== 0 || !reported) throw new Error(`llama-mtmd-cli failed: ${cli.stderr.slice(-2000)}`);
    times.push(Number(reported[1]));
  }
  return median(times);
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "corral-bench-vision-"));
  writeFileSync(join(dir, "model.gguf"), benchModel());
  writeFileSync(join(dir, "mmproj.gguf"), writeTinyProjector({ textEmbedding: 512, vision: BENCH_VISION }));
  try {
    const runner = await runnerFigures(dir);
    const cliEncode = mtmdCliEncodeMs(dir);
    const size = `${BENCH_VISION.imageSize}×${BENCH_VISION.imageSize}`;
    console.table([
      { case: `runner: prompt + 1 image (${size})`, prompt_tokens: runner.tokens.image, ms: runner.withImage },
      { case: "runner: text prompt as long", prompt_tokens: runner.tokens.text, ms: runner.sameLength },
      { case: "runner: image encode (the difference)", prompt_tokens: "", ms: runner.encode },
      { case: "llama-mtmd-cli: image encode (anchor)", prompt_tokens: "", ms: cliEncode },
    ]);
    console.log(
      `${visionPositions(BENCH_VISION)} positions per image; llama-server start (spawn → healthy): ` +
        `${runner.startMs.toFixed(0)} ms; threads ${THREADS}, runs ${RUNS}; medians; llama-mtmd-cli reports whole ms`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
