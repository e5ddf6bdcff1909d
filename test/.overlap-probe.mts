import { Ollama } from "ollama";
import { readFileSync } from "node:fs";
const s = JSON.parse(readFileSync("/tmp/keepstack.out", "utf8"));
const o = new Ollama({ host: s.url, headers: { Authorization: `Bearer ${s.key}` } });
const t0 = performance.now();
const r = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
  const st = await o.generate({ model: "tiny", prompt: `Story number ${i}:`, stream: true, options: { num_predict: 48, temperature: 0.8, seed: i } });
  let first = 0; let n = 0;
  for await (const c of st) { first ||= performance.now() - t0; n++; }
  return [i, first.toFixed(0), (performance.now() - t0).toFixed(0), n];
}));
console.log(r);
