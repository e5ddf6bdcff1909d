/**
 * `npm run build:native`: compiles node-llama-cpp from the llama.cpp source bundled in its npm package (offline),
 * with the CPU flags of this machine, as the runner image does. Once built, node-llama-cpp prefers the local build
 * over its prebuilt binaries on its own, so the local stack, the tests and the benchmarks use it when present.
 * Cached: a finished build is reused; `--force` rebuilds. Takes ~10 minutes on 2 cores; progress is shown.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");

/** Where node-llama-cpp keeps the CPU build made by `source download --gpu false` on this platform. */
export function nativeBuildDir(): string {
  return join(root, "node_modules", "node-llama-cpp", "llama", "localBuilds", `${process.platform}-${process.arch}`);
}

/** node-llama-cpp uses a local build only when its binary, metadata and done marker all exist. */
export function nativeBuildReady(): boolean {
  const dir = nativeBuildDir();
  return ["Release/llama-addon.node", "buildDone.status"].every((file) => existsSync(join(dir, file)));
}

function main() {
  if (nativeBuildReady() && !process.argv.includes("--force")) {
    console.log(`native build present: ${nativeBuildDir()} (npm run build:native -- --force rebuilds)`);
    return;
  }
  console.log("building node-llama-cpp from its bundled llama.cpp source (CPU, native flags; ~10 min on 2 cores)…");
  const started = Date.now();
  execFileSync("npx", ["--no", "node-llama-cpp", "source", "download", "--gpu", "false"], {
    cwd: root,
    stdio: "inherit",
  });
  console.log(`native build done in ${Math.round((Date.now() - started) / 1000)} s: ${nativeBuildDir()}`);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
