/**
 * `npm run bench`: measures the targets of DESIGN.md on the local stack (never asserted in tests).
 *   - relay: time to first token through the edge vs straight to the runner (p50), and aggregate tokens/s of
 *     32 concurrent streams through the edge vs straight to the runner;
 *   - control plane: /api/tags and /api/show latency (p50/p99) under 8 concurrent clients.
 * It starts its own stack (as `npm start` does) in a throwaway state dir and prints one JSON report. The edge runs
 * without wrangler's DevTools bridge (CORRAL_DEVTOOLS=0, see scripts/stack/edge-dev.ts), which otherwise costs more
 * CPU per streamed token than the runner; BENCH_DEVTOOLS=1 measures with it. Edge and direct samples alternate, so
 * a machine whose load drifts during the run skews both alike; the report carries the load average.
 * Env: BENCH_STREAMS (32), BENCH_TOKENS (64), BENCH_TTFT_SAMPLES (40), BENCH_SECONDS (5), BENCH_ROUNDS (2).
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { TINY_MODEL_DEFAULT_SEED, writeTinyModel } from "../gpu-runner/src/tiny-model/index";
import { startStack } from "../test/harness";

const STREAMS = Number(process.env.BENCH_STREAMS ?? 32);
const TOKENS = Number(process.env.BENCH_TOKENS ?? 64);
const TTFT_SAMPLES = Number(process.env.BENCH_TTFT_SAMPLES ?? 40);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const DEVTOOLS = process.env.BENCH_DEVTOOLS === "1";

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

interface Target {
  url: string;
  headers: Record<string, string>;
  body: (prompt: string) => unknown;
}

/** Streams one generate and returns ms to the first token chunk and the eval_count of the final chunk. */
async function streamOnce(t: Target, prompt: string): Promise<{ ttftMs: number; tokens: number }> {
  const started = performance.now();
  const res = await fetch(t.url, {
    method: "POST",
    headers: { ...t.headers, "content-type": "application/json" },
    body: JSON.stringify(t.body(prompt)),
  });
  if (!res.ok || !res.body) throw new Error(`${t.url}: ${res.status} ${await res.text()}`);
  let ttftMs = Number.NaN;
  let buffered = "";
  let tokens = 0;
  const decoder = new TextDecoder();
  for await (const chunk of res.body) {
    if (Number.isNaN(ttftMs)) ttftMs = performance.now() - started;
    buffered += decoder.decode(chunk, { stream: true });
    let nl = buffered.indexOf("\n");
    while (nl >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.includes('"done":true')) tokens = (JSON.parse(line) as { eval_count?: number }).eval_count ?? 0;
      nl = buffered.indexOf("\n");
    }
  }
  return { ttftMs, tokens };
}

/** Time to first token of `a` and `b`, sample for sample alternately. */
async function ttftPair(a: Target, b: Target) {
  const samples: [number[], number[]] = [[], []];
  for (let i = 0; i < TTFT_SAMPLES; i++) {
    samples[0].push((await streamOnce(a, `sample ${i}`)).ttftMs);
    samples[1].push((await streamOnce(b, `sample ${i}`)).ttftMs);
  }
  const stats = (xs: number[]) => ({ p50_ms: round(percentile(xs, 50)), p90_ms: round(percentile(xs, 90)) });
  return [stats(samples[0]), stats(samples[1])] as const;
}

async function aggregateOnce(t: Target) {
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: STREAMS }, (_, i) => streamOnce(t, `stream ${i}`)));
  return { seconds: (performance.now() - started) / 1000, tokens: results.reduce((a, r) => a + r.tokens, 0) };
}

type Totals = { seconds: number; tokens: number };

/** Aggregate tokens/s of `a` and `b` over ROUNDS rounds each, in alternating order (a b, b a, ...). */
async function aggregatePair(a: Target, b: Target) {
  const totals: [Totals, Totals] = [
    { seconds: 0, tokens: 0 },
    { seconds: 0, tokens: 0 },
  ];
  for (let r = 0; r < ROUNDS; r++) {
    for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
      const once = await aggregateOnce(i === 0 ? a : b);
      totals[i === 0 ? 0 : 1].seconds += once.seconds;
      totals[i === 0 ? 0 : 1].tokens += once.tokens;
    }
  }
  const stats = ({ seconds, tokens }: Totals) => ({
    streams: STREAMS,
    rounds: ROUNDS,
    tokens,
    seconds: round(seconds),
    tokens_per_s: round(tokens / seconds, 1),
  });
  return [stats(totals[0]), stats(totals[1])] as const;
}

async function latencyUnderLoad(run: () => Promise<Response>) {
  const samples: number[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        const res = await run();
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`control plane ${res.status}`);
        samples.push(performance.now() - t0);
      }
    }),
  );
  return {
    requests: samples.length,
    p50_ms: round(percentile(samples, 50)),
    p99_ms: round(percentile(samples, 99)),
  };
}

async function main() {
  const loadBefore = loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");
  const stack = await startStack({ env: { CORRAL_QUIET: "1", CORRAL_DEVTOOLS: DEVTOOLS ? "1" : "0" } });
  try {
    const { runner_secret } = JSON.parse(readFileSync(join(stack.stateDir, "dev.json"), "utf8")) as {
      runner_secret: string;
    };
    const gguf = writeTinyModel({ seed: TINY_MODEL_DEFAULT_SEED });
    const blob = `sha256:${createHash("sha256").update(gguf).digest("hex")}`;
    const tags = (await (
      await fetch(`${stack.url}/api/tags`, { headers: { authorization: `Bearer ${stack.key}` } })
    ).json()) as {
      models: { name: string; digest: string }[];
    };
    const tiny = tags.models.find((m) => m.name.startsWith("tiny"));
    if (!tiny) throw new Error("tiny model missing");
    const options = { num_predict: TOKENS, temperature: 0 };
    const viaEdge: Target = {
      url: `${stack.url}/api/generate`,
      headers: { authorization: `Bearer ${stack.key}` },
      body: (prompt) => ({ model: "tiny", prompt, options }),
    };
    const direct: Target = {
      url: `http://127.0.0.1:${stack.runnerPorts[0]}/v1/generate`,
      headers: { authorization: `Bearer ${runner_secret}` },
      body: (prompt) => ({
        request_id: crypto.randomUUID(),
        model: { name: "tiny", digest: tiny.digest, model_blob: blob, model_size: gguf.byteLength },
        request: { model: "tiny", prompt, options },
      }),
    };
    await streamOnce(viaEdge, "warm up"); // loads the model on the runner
    await streamOnce(direct, "warm up");

    const [ttftEdge, ttftDirect] = await ttftPair(viaEdge, direct);
    const [aggEdge, aggDirect] = await aggregatePair(viaEdge, direct);
    const auth = { authorization: `Bearer ${stack.key}` };
    const tagsLatency = await latencyUnderLoad(() => fetch(`${stack.url}/api/tags`, { headers: auth }));
    const showLatency = await latencyUnderLoad(() =>
      fetch(`${stack.url}/api/show`, { method: "POST", headers: auth, body: JSON.stringify({ model: "tiny" }) }),
    );
    console.log(
      JSON.stringify(
        {
          machine: {
            load_average_before: loadBefore,
            load_average_after: loadavg()
              .map((x) => x.toFixed(2))
              .join(" "),
          },
          edge: DEVTOOLS ? "wrangler dev (DevTools on)" : "wrangler, DevTools off (scripts/stack/edge-dev.ts)",
          relay: {
            ttft_edge: ttftEdge,
            ttft_direct: ttftDirect,
            ttft_added_p50_ms: round(ttftEdge.p50_ms - ttftDirect.p50_ms),
            aggregate_edge: aggEdge,
            aggregate_direct: aggDirect,
            aggregate_ratio: round(aggEdge.tokens_per_s / aggDirect.tokens_per_s, 3),
          },
          control_plane: { tags: tagsLatency, show: showLatency },
        },
        null,
        2,
      ),
    );
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
