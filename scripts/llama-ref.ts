/** llama.cpp reference tools and the benchmark model shared by the runner and quantize benchmarks. */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeRandomLlamaModel } from "../gpu-runner/src/tiny-model/random-llama";

const root = resolve(import.meta.dirname, "..");

/** The benchmark models' shapes: 26m is every benchmark's default; 110m has ~4× longer forward passes. */
const BENCH_MODELS = {
  "26m": { embedding: 512, layers: 8, heads: 8, kvHeads: 4, feedForward: 1536 },
  "110m": { embedding: 768, layers: 12, heads: 12, kvHeads: 4, feedForward: 2048 },
} as const;

export type BenchModelSize = keyof typeof BENCH_MODELS;

/** BENCH_MODEL's value, checked. */
export function benchModelSize(raw: string): BenchModelSize {
  if (!(raw in BENCH_MODELS)) throw new Error(`BENCH_MODEL must be one of ${Object.keys(BENCH_MODELS)}, got "${raw}"`);
  return raw as BenchModelSize;
}

/**
 * A llama GGUF (F16, random weights, the built-in tokenizer), 26M parameters unless asked for the 110M one. It never
 * ends a top-k generation by itself, so every stream of a throughput run generates all of its tokens.
 */
export function benchModel(size: BenchModelSize = "26m"): Uint8Array {
  return writeRandomLlamaModel({
    name: `corral-bench-${size}`,
    description: "corral runner benchmark model, random weights",
    hyperparameters: BENCH_MODELS[size],
    neverEnds: true,
  });
}

type LlamaRefTarget = "llama-server" | "llama-quantize" | "llama-mtmd-cli";

/** The tool when this machine has built it already (npm start gives runners llama-server this way), else undefined. */
export function cachedLlamaRefBinary(target: LlamaRefTarget): string | undefined {
  const bin = join(root, ".corral", "llama-ref", "build", "bin", target);
  return existsSync(bin) ? bin : undefined;
}

/**
 * A tool from llama.cpp's own build (llama-server, llama-quantize, llama-mtmd-cli), built once from the source bundled in
 * node-llama-cpp into .corral/llama-ref: the same llama.cpp the runner uses, so comparisons are like for like.
 */
export function llamaRefBinary(target: LlamaRefTarget): string {
  const dir = join(root, ".corral", "llama-ref");
  const bin = join(dir, "build", "bin", target);
  if (existsSync(bin)) return bin;
  mkdirSync(join(root, ".corral"), { recursive: true });
  const bundle = join(root, "node_modules", "node-llama-cpp", "llama", "gitRelease.bundle");
  console.error(`building ${target} from node-llama-cpp's bundled llama.cpp (once per machine, ~10 min)…`);
  const started = Date.now();
  if (!existsSync(dir)) execFileSync("git", ["clone", "-q", bundle, dir], { stdio: "inherit" });
  const flags = ["-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF"];
  execFileSync("cmake", ["-B", "build", "-DCMAKE_BUILD_TYPE=Release", ...flags], { cwd: dir, stdio: "inherit" });
  execFileSync("cmake", ["--build", "build", "--target", target, "-j2"], { cwd: dir, stdio: "inherit" });
  console.error(`built ${target} in ${Math.round((Date.now() - started) / 1000)} s (cached in ${dir})`);
  return bin;
}
