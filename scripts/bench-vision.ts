/**
 * `npm run bench:vision`: what an image costs in the runner's vision path (the supervised llama-server with the
 * tiny CLIP projector), side by side with the same prompt without the image: prompt-processing time per request
 * (median of BENCH_RUNS, each with a fresh image so nothing is cached). The difference is the image's encode
 * (ViT + projector) plus decoding its 16 positions in the text model.
 * Env: BENCH_THREADS (2), BENCH_RUNS (5), BENCH_LLAMA_SERVER (default: built once into .corral/llama-ref).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeTinyProjector } from "../gpu-runner/src/tiny-model/clip-projector";
import { noisePng } from "../gpu-runner/src/tiny-model/png";
import { LlamaServerProcess, MEDIA_MARKER } from "../gpu-runner/src/vision/llama-server";
import { benchModel, llamaRefBinary } from "./llama-ref";

const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function promptMs(server: LlamaServerProcess, prompt: unknown): Promise<{ ms: number; tokens: number }> {
  const body = { prompt, n_predict: 1, temperature: 0, cache_prompt: false };
  for await (const event of server.completion(body, AbortSignal.timeout(120_000))) {
    if (event.stop !== true) continue;
    const timings = event.timings as { prompt_ms: number };
    return { ms: timings.prompt_ms, tokens: Number(event.tokens_evaluated) };
  }
  throw new Error("no final event");
}

async function main() {
  const binary = process.env.BENCH_LLAMA_SERVER ?? llamaRefBinary("llama-server");
  const dir = mkdtempSync(join(tmpdir(), "corral-bench-vision-"));
  writeFileSync(join(dir, "model.gguf"), benchModel());
  writeFileSync(join(dir, "mmproj.gguf"), writeTinyProjector({ textEmbedding: 512 }));
  const startedAt = performance.now();
  const server = await LlamaServerProcess.start({
    binary,
    modelPath: join(dir, "model.gguf"),
    projectorPath: join(dir, "mmproj.gguf"),
    contextSize: 1024,
    parallel: 1,
    threads: THREADS,
  });
  const startMs = performance.now() - startedAt;
  try {
    const text = "Describe the picture in one short sentence, please.";
    const withImage: number[] = [];
    const without: number[] = [];
    let tokens = { image: 0, text: 0 };
    for (let run = 0; run < RUNS; run++) {
      const image = noisePng(100 + run).toString("base64");
      const a = await promptMs(server, { prompt_string: `${MEDIA_MARKER}${text}`, multimodal_data: [image] });
      const b = await promptMs(server, text);
      withImage.push(a.ms);
      without.push(b.ms);
      tokens = { image: a.tokens, text: b.tokens };
    }
    const rows = [
      { case: "prompt + 1 image (32×32)", prompt_tokens: tokens.image, prompt_ms_median: median(withImage) },
      { case: "same prompt, no image", prompt_tokens: tokens.text, prompt_ms_median: median(without) },
    ];
    console.table(rows);
    console.log(
      `image cost (encode + its positions): ${(median(withImage) - median(without)).toFixed(2)} ms per image; ` +
        `llama-server start (spawn → healthy): ${startMs.toFixed(0)} ms; threads ${THREADS}, runs ${RUNS}`,
    );
  } finally {
    await server.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
