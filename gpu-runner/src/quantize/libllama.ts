/**
 * Where llama.cpp's shared library lives, for the quantize child to dlopen. In order: `LLAMA_LIB_PATH`; the newest
 * local build of node-llama-cpp (what the runner image compiles: llama/localBuilds/<build>/Release); the prebuilt
 * binaries package for this platform (@node-llama-cpp/<platform>-<arch>/bins/<platform>-<arch>). The libraries
 * libllama needs (libggml*) sit beside it and are found through its `$ORIGIN` runpath, or through the
 * LD_LIBRARY_PATH the child is started with.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";

export const LLAMA_LIB_PATH_ENV = "LLAMA_LIB_PATH";

/** libllama.so, libllama.v0.5.0.so, libllama.dylib, llama.dll; never libllama-common. */
const LIB_NAME = /^(?:lib)?llama(?:\.v?[\d.]+)?\.(?:so|dylib|dll)$/;

/** node-llama-cpp's platform names. */
function nlcPlatform(): string {
  if (process.platform === "darwin") return "mac";
  if (process.platform === "win32") return "win";
  return process.platform;
}

/** The directory holding `package.json` at or above `file`. */
function packageRoot(file: string): string | undefined {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

/** The llama library in `dir`, if there is one. */
export function libraryIn(dir: string): string | undefined {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return undefined;
  }
  // Prefer the plain name when a build ships both a versioned file and a link to it.
  const found = names.filter((name) => LIB_NAME.test(name)).sort((a, b) => a.length - b.length)[0];
  return found === undefined ? undefined : join(dir, found);
}

function newestLocalBuild(nlcRoot: string): string | undefined {
  const builds = join(nlcRoot, "llama", "localBuilds");
  let folders: string[];
  try {
    folders = readdirSync(builds);
  } catch {
    return undefined;
  }
  let newest: { path: string; mtimeMs: number } | undefined;
  for (const folder of folders) {
    const lib = libraryIn(join(builds, folder, "Release"));
    if (lib === undefined) continue;
    const mtimeMs = statSync(lib).mtimeMs;
    if (!newest || mtimeMs > newest.mtimeMs) newest = { path: lib, mtimeMs };
  }
  return newest?.path;
}

function prebuilt(nlcRoot: string): string | undefined {
  const platform = `${nlcPlatform()}-${process.arch}`;
  let entry: string;
  try {
    // An optional dependency of node-llama-cpp: resolved from there, wherever npm put it.
    entry = createRequire(join(nlcRoot, "package.json")).resolve(`@node-llama-cpp/${platform}`);
  } catch {
    return undefined;
  }
  const root = packageRoot(entry);
  return root === undefined ? undefined : libraryIn(join(root, "bins", platform));
}

/** The path of libllama to load, or an Error saying where it looked. */
export function locateLibllama(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env[LLAMA_LIB_PATH_ENV];
  if (configured) {
    const path = resolve(configured);
    if (!existsSync(path)) throw new Error(`${LLAMA_LIB_PATH_ENV}=${configured}: no such file`);
    return path;
  }
  let nlcRoot: string | undefined;
  try {
    nlcRoot = packageRoot(createRequire(import.meta.url).resolve("node-llama-cpp"));
  } catch {
    nlcRoot = undefined;
  }
  if (nlcRoot === undefined)
    throw new Error(`libllama not found: node-llama-cpp is not installed; set ${LLAMA_LIB_PATH_ENV}`);
  const found = newestLocalBuild(nlcRoot) ?? prebuilt(nlcRoot);
  if (found === undefined) {
    throw new Error(
      `libllama not found under ${nlcRoot} (no local build, no prebuilt package for ${nlcPlatform()}-${process.arch}); set ${LLAMA_LIB_PATH_ENV}`,
    );
  }
  return found;
}
