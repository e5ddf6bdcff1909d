/**
 * `npm run bench:upload-stall`: what one tenant's blob upload costs everyone else on the edge. Starts the stack (as
 * `npm start` does, throwaway state) and, while curl (its own process) uploads the 26M-parameter F16 bench model
 * (~52 MB, scripts/llama-ref.ts) to `POST /api/blobs`, times a cheap request (`GET /api/version`) every 50 ms.
 * Prints, per upload form, the upload's time and the probe's p50 and worst latency, beside the idle probe's.
 * Forms: `length` (Content-Length, hashed in the Worker), `chunked` (no length, R2 multipart), `exists` (a blob
 * the tenant has already: read and dropped). Each upload is a new blob (one byte changed) except `exists`.
 * BENCH_RUNS (2) rounds of each form.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { startStack } from "../test/harness";
import { benchModel } from "./llama-ref";

const RUNS = Number(process.env.BENCH_RUNS ?? 2);
const FORMS = ["length", "chunked", "exists"] as const;

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
const ms = (x: number | undefined) => Math.round(x ?? Number.NaN);

/** Times `GET /api/version` every 50 ms until `work` settles. */
async function probeDuring(url: string, key: string, work: Promise<unknown>) {
  let running = true;
  void work.finally(() => {
    running = false;
  });
  const latencies: number[] = [];
  const start = performance.now();
  while (running) {
    const t = performance.now();
    await (await fetch(`${url}/api/version`, { headers: { authorization: `Bearer ${key}` } })).arrayBuffer();
    latencies.push(performance.now() - t);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const result = await work;
  latencies.sort((a, b) => a - b);
  return {
    result,
    work_ms: ms(performance.now() - start),
    probes: latencies.length,
    probe_p50_ms: ms(percentile(latencies, 0.5)),
    probe_max_ms: ms(latencies.at(-1)),
  };
}

/** curl in its own process, so the probe's timings are not this process's. Resolves to the HTTP status. */
function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", ...args]);
    let out = "";
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    child.on("error", reject);
    child.on("exit", () => resolve(out));
  });
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), "corral-bench-upload-stall-"));
  const model = benchModel();
  const stack = await startStack();
  try {
    const { result: _, ...idle } = await probeDuring(stack.url, stack.key, new Promise((r) => setTimeout(r, 3000)));
    const rows: Record<string, unknown>[] = [{ form: "idle", ...idle }];
    let variant = 0;
    for (let run = 0; run < RUNS; run++) {
      for (const form of FORMS) {
        const bytes = new Uint8Array(model);
        bytes[bytes.length - 1] = form === "exists" ? 0 : ++variant;
        const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
        const file = join(work, "blob.bin");
        writeFileSync(file, bytes);
        const args = ["-X", "POST", "-H", `authorization: Bearer ${stack.key}`, "--data-binary", `@${file}`];
        if (form === "chunked") args.push("-H", "transfer-encoding: chunked");
        const url = `${stack.url}/api/blobs/${digest}`;
        if (form === "exists") await curl([...args, url]);
        const { result, ...timing } = await probeDuring(stack.url, stack.key, curl([...args, url]));
        rows.push({ form, status: result, ...timing });
      }
    }
    console.log(
      JSON.stringify(
        {
          blob_bytes: model.length,
          load_average: loadavg()
            .map((x) => x.toFixed(2))
            .join(" "),
          rows,
        },
        null,
        2,
      ),
    );
  } finally {
    await stack.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
