/**
 * The edge Worker as Cloudflare would receive it: `wrangler deploy --dry-run` bundles it without uploading, and the
 * compressed size must stay well under the platform's script size limit (3 MiB gzip on Workers Free, 10 MiB on Paid).
 * The size is printed so a growing bundle shows up in every test run, long before it fails here.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { afterAll, expect, it } from "vitest";

const MiB = 1024 * 1024;
/** Workers Free's limit on the compressed script. */
const FREE_PLAN_LIMIT = 3 * MiB;
/** Headroom kept below it: a third of the limit. */
const BUDGET = FREE_PLAN_LIMIT - MiB;

const root = new URL("..", import.meta.url).pathname;
let outdir = "";
afterAll(async () => {
  if (outdir) await rm(outdir, { recursive: true, force: true });
});

it("bundles the Worker with wrangler's dry run, under the size limit with a margin", async () => {
  outdir = await mkdtemp(join(tmpdir(), "corral-worker-bundle-"));
  await promisify(execFile)("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outdir], {
    cwd: root,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
    timeout: 120_000,
  });
  const modules = (await readdir(outdir)).filter((f) => /\.(m?js|wasm)$/.test(f));
  expect(modules).toContain("index.js");
  let raw = 0;
  let gzip = 0;
  for (const file of modules) {
    const bytes = await readFile(join(outdir, file));
    raw += bytes.byteLength;
    gzip += gzipSync(bytes, { level: 9 }).byteLength;
  }
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  console.log(
    `worker bundle: ${kib(raw)} raw, ${kib(gzip)} gzip (budget ${kib(BUDGET)}, Free limit ${kib(FREE_PLAN_LIMIT)})`,
  );
  expect(gzip).toBeLessThan(BUDGET);
});
