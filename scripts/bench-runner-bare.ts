/**
 * The engine alone, for `npm run bench:runner`: node-llama-cpp in one process with the runner's context settings
 * (contextSize NUM_CTX per sequence, PARALLEL sequences, threads 1, batch 512, flash attention auto) and the
 * runner's sampling for a request without options; no HTTP, no templates, no metering. Side by side with the runner it splits the gap to llama-server into what the engine
 * loop costs (bare vs llama-server) and what the runner adds on top (runner vs bare). `GATE=1` routes the decodes
 * through the runner's DecodeGate, so its effect is measured on the engine alone too. `steps` splits each stream
 * count's time into forward passes and the time between them (scripts/forward-pass-timer.ts).
 * Usage: tsx scripts/bench-runner-bare.ts <model.gguf>; env STREAMS, TOKENS, PARALLEL, NUM_CTX, GATE. Prints JSON.
 */
import { getLlama, LlamaCompletion, type LlamaContextSequence } from "node-llama-cpp";
import { DecodeGate, installDecodeGate } from "../gpu-runner/src/decode-gate";
import { resolveSettings } from "../gpu-runner/src/inference/options";
import { type StepTimes, timeForwardPasses } from "./forward-pass-timer";

const STREAMS = (process.env.STREAMS ?? "1,4,8,32").split(",").map(Number);
const TOKENS = Number(process.env.TOKENS ?? 128);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function main() {
  const llama = await getLlama({ gpu: false });
  const model = await llama.loadModel({ modelPath: process.argv[2] ?? "" });
  const context = await model.createContext({
    contextSize: Number(process.env.NUM_CTX ?? 512),
    sequences: Number(process.env.PARALLEL ?? Math.max(...STREAMS)),
    threads: 1,
    batchSize: 512,
    flashAttention: "auto",
  });
  const sequences: LlamaContextSequence[] = Array.from({ length: context.totalSequences }, () => context.getSequence());
  let generating = 0;
  const timer = timeForwardPasses(context);
  if (process.env.GATE === "1") installDecodeGate(context, new DecodeGate(() => generating));
  // What the runner samples with for an Ollama request with only a seed (gpu-runner/src/inference/options.ts).
  const { temperature, topK, topP, minP, seed, repeatPenalty } = resolveSettings({ seed: 1 }, context.contextSize);
  const sampling = { temperature, topK, topP, minP, seed, repeatPenalty };
  const generate = async (sequence: LlamaContextSequence, prompt: string, maxTokens: number) => {
    await sequence.clearHistory();
    const completion = new LlamaCompletion({ contextSequence: sequence });
    generating++;
    let tokens = 0;
    try {
      await completion.generateCompletion(model.tokenize(prompt), {
        ...sampling,
        maxTokens,
        onToken: (t) => {
          tokens += t.length;
        },
      });
    } finally {
      generating--;
      completion.dispose();
    }
    return tokens;
  };
  await generate(sequences[0] as LlamaContextSequence, "warm up", 16);
  timer.take();
  const rates: Record<string, number> = {};
  const steps: Record<string, StepTimes> = {};
  for (const n of STREAMS) {
    const samples: number[] = [];
    for (let r = 0; r < (n === 1 ? 3 : 1); r++) {
      const t0 = performance.now();
      const counts = await Promise.all(sequences.slice(0, n).map((s, i) => generate(s, `Tell me ${r}-${i}`, TOKENS)));
      samples.push(counts.reduce((a, b) => a + b, 0) / ((performance.now() - t0) / 1000));
    }
    rates[`${n}`] = Math.round(median(samples) * 10) / 10;
    steps[`${n}`] = timer.take();
  }
  console.log(JSON.stringify({ build: llama.buildType, rates, steps }));
  await context.dispose();
  await model.dispose();
  await llama.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
