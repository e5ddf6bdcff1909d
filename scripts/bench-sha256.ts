/**
 * `npm run bench:sha256`: the edge's SHA-256 cores side by side, on the CPU this runs on. A pull hashes every blob
 * byte inside one Worker request (edge/PULL_PUSH.md), so the hasher's speed and the Worker's CPU limit
 * (wrangler.toml `limits.cpu_ms`) set the largest blob one pull can take: ceiling = speed × cpu_ms.
 *   - ts: protocol's TypeScript core (what pulls and uploads used before);
 *   - wasm: edge/src/store/sha256.wasm through the same Sha256 wrapper (what ResumableSha256 uses now);
 *   - node:crypto: OpenSSL's native SHA-256, for scale (not available to a Worker as a resumable hash).
 * BENCH_SHA_MIB (256) of random bytes fed in 64 KiB chunks (what a fetch body delivers), median of BENCH_RUNS (5).
 * Timed in CPU time (process.cpuUsage), the quantity the Worker limit counts, so a busy machine slows the figures
 * less than wall time would. Both cores run in V8 here, as in workerd.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { Sha256 } from "@corral/protocol/sha256";
import { type Sha256WasmExports, WasmSha256Core } from "../edge/src/store/sha256-wasm";
import { committedSha256Wasm } from "./build-sha256-wasm";

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_SHA_MIB ?? 256) * MiB;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CHUNK = 64 * 1024;
const cpuMs = Number(
  /cpu_ms\s*=\s*(\d+)/.exec(readFileSync(new URL("../wrangler.toml", import.meta.url), "utf8"))?.[1],
);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

const data = randomBytes(SIZE);
// @types/node leaves out WebAssembly's constructors; Node has them.
const { WebAssembly: wasm } = globalThis as unknown as {
  WebAssembly: { Module: new (b: Uint8Array) => object; Instance: new (m: object) => { exports: unknown } };
};
const wasmModule = new wasm.Module(committedSha256Wasm());
const hashers: Record<string, () => { update(c: Uint8Array): unknown; digest(): unknown }> = {
  ts: () => new Sha256(),
  wasm: () => new Sha256(new WasmSha256Core(new wasm.Instance(wasmModule).exports as Sha256WasmExports)),
  "node:crypto": () => createHash("sha256"),
};

// Runs interleave the cores, so a change in the machine's load hits them alike.
const times: Record<string, number[]> = Object.fromEntries(Object.keys(hashers).map((n) => [n, []]));
const digests: Record<string, string> = {};
for (let run = 0; run < RUNS; run++) {
  for (const [name, make] of Object.entries(hashers)) {
    const start = process.cpuUsage();
    const hasher = make();
    for (let at = 0; at < SIZE; at += CHUNK) hasher.update(data.subarray(at, at + CHUNK));
    digests[name] = Buffer.from(hasher.digest() as Uint8Array).toString("hex");
    const used = process.cpuUsage(start);
    times[name]!.push((used.user + used.system) / 1000);
  }
}
const results: Record<string, { mibPerS: number; ceilingGiB: number; digest: string }> = {};
for (const name of Object.keys(hashers)) {
  const mibPerS = SIZE / MiB / (median(times[name]!) / 1000);
  results[name] = {
    mibPerS: Math.round(mibPerS),
    ceilingGiB: Math.round(((mibPerS * cpuMs) / 1000 / 1024) * 10) / 10,
    digest: digests[name]!.slice(0, 16),
  };
}
if (new Set(Object.values(digests)).size !== 1) throw new Error(`cores disagree: ${JSON.stringify(results)}`);

console.log(JSON.stringify({ bytes: SIZE, runs: RUNS, cpu_ms: cpuMs, loadavg: loadavg()[0], results }, null, 2));
console.log("core          MiB/s of CPU   largest blob per pull at cpu_ms (GiB, hashing only)");
for (const [name, r] of Object.entries(results)) {
  console.log(`${name.padEnd(12)} ${String(r.mibPerS).padStart(13)}   ${r.ceilingGiB}`);
}
