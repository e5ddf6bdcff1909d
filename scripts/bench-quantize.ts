/**
 * `npm run bench:quantize`: the runner's quantizer against llama.cpp's own `llama-quantize` on the same F16 GGUF
 * and thread count (DESIGN.md: same output and speed — it is the same code, called through FFI).
 *   - llama-quantize is built once from the llama.cpp source bundled in node-llama-cpp into .corral/llama-ref
 *     (BENCH_LLAMA_QUANTIZE=<path> uses an existing binary instead).
 *   - For each type, both write a file from the 26M-parameter benchmark GGUF; reports wall time of each (median of
 *     BENCH_RUNS, default 3) and whether the outputs are byte-identical.
 * Env: BENCH_THREADS (2), BENCH_TYPES (Q8_0,Q4_K_M).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { QuantizeFileType } from "@corral/protocol/runner";
import { quantizeGguf } from "../gpu-runner/src/quantize/quantize";
import { benchModel, llamaRefBinary } from "./llama-ref";

const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TYPES = (process.env.BENCH_TYPES ?? "Q8_0,Q4_K_M").split(",") as QuantizeFileType[];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

async function timed(run: () => Promise<void> | void): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

async function main() {
  const binary = process.env.BENCH_LLAMA_QUANTIZE ?? llamaRefBinary("llama-quantize");
  const dir = mkdtempSync(join(tmpdir(), "corral-bench-quantize-"));
  try {
    const input = join(dir, "f16.gguf");
    writeFileSync(input, benchModel());
    const results = [];
    for (const type of TYPES) {
      const ours = join(dir, `ours-${type}.gguf`);
      const theirs = join(dir, `llama-${type}.gguf`);
      const oursMs: number[] = [];
      const theirsMs: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        rmSync(ours, { force: true });
        rmSync(theirs, { force: true });
        theirsMs.push(
          await timed(() => {
            execFileSync(binary, [input, theirs, type, String(THREADS)], { stdio: "ignore" });
          }),
        );
        oursMs.push(await timed(() => quantizeGguf({ input, output: ours, fileType: type, threads: THREADS })));
      }
      results.push({
        type,
        corral_ms: Math.round(median(oursMs)),
        llama_quantize_ms: Math.round(median(theirsMs)),
        speed_ratio: Math.round((median(theirsMs) / median(oursMs)) * 100) / 100,
        identical_output: sha256(ours) === sha256(theirs),
      });
    }
    console.log(JSON.stringify({ model: "26M-param llama, F16", threads: THREADS, runs: RUNS, results }, null, 2));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
