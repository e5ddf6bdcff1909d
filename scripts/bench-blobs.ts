/**
 * `npm run bench:blobs`: the runner's cold-start blob fetch against the link it uses (DESIGN.md: ≥ 80% of the link's
 * bandwidth with parallel ranged GETs, then cached).
 *   - Starts the stack (as `npm start` does, throwaway state), uploads a BENCH_BLOB_MIB (256) random blob with the
 *     operator's upload client (multipart).
 *   - link: one plain GET of the blob from the edge's runner blob route, read to the end and discarded — what the
 *     connection between runner and blob store carries at best with one stream.
 *   - cold start: the runner's BlobCache (EdgeBlobSource, parallel ranged GETs, sha256 verified, written to disk)
 *     fetching the same blob into an empty cache; then a warm acquire of it.
 * Median of BENCH_RUNS (3). The local link is loopback through wrangler, so the edge's CPU is shared with the runner.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { BlobCache } from "../gpu-runner/src/blob-cache";
import { EdgeBlobSource } from "../gpu-runner/src/blob-source";
import { startStack } from "../test/harness";
import { DEFAULTS, silentProgress, uploadFile } from "./upload-lib";

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_BLOB_MIB ?? 256) * MiB;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const mibPerS = (bytes: number, ms: number) => Math.round((bytes / MiB / (ms / 1000)) * 10) / 10;

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), "corral-bench-blobs-"));
  const stack = await startStack();
  try {
    const file = join(work, "blob.bin");
    writeFileSync(file, randomBytes(SIZE));
    const { digest } = await uploadFile(
      { ...DEFAULTS, host: stack.url, key: stack.key, file, stateDir: join(work, "uploads") },
      fetch,
      silentProgress,
    );
    const secret = (JSON.parse(readFileSync(join(stack.stateDir, "dev.json"), "utf8")) as { runner_secret: string })
      .runner_secret;

    const link: number[] = [];
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      link.push(
        await timed(async () => {
          const res = await fetch(`${stack.url}/internal/blobs/${encodeURIComponent(digest)}`, {
            headers: { authorization: `Bearer ${secret}` },
          });
          let n = 0;
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) n += chunk.length;
          if (n !== SIZE) throw new Error(`read ${n} bytes, expected ${SIZE}`);
        }),
      );
      const dir = join(work, `cache-${i}`);
      const cache = new BlobCache({ dir, maxBytes: 4 * SIZE, source: new EdgeBlobSource(stack.url, secret) });
      await cache.init();
      cold.push(await timed(async () => (await cache.acquire(digest, SIZE)).release()));
      warm.push(await timed(async () => (await cache.acquire(digest, SIZE)).release()));
      rmSync(dir, { recursive: true, force: true });
    }
    const linkMs = median(link);
    const coldMs = median(cold);
    console.log(
      JSON.stringify(
        {
          blob_mib: SIZE / MiB,
          runs: RUNS,
          load_average: loadavg()
            .map((x) => x.toFixed(2))
            .join(" "),
          link_single_get_mib_s: mibPerS(SIZE, linkMs),
          cold_start_mib_s: mibPerS(SIZE, coldMs),
          cold_vs_link: Math.round((linkMs / coldMs) * 100) / 100,
          warm_acquire_ms: Math.round(median(warm) * 10) / 10,
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
