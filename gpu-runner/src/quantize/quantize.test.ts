import { execFileSync, spawn } from "node:child_process";
import {
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { bytesSource, GgmlType, type GgufHeader, readGgufHeader } from "@corral/protocol";
import type { Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { testLlama, tinyModelBlob } from "../test-support";
import { writeRandomLlamaModel } from "../tiny-model/random-llama";
import { LLAMA_LIB_PATH_ENV, locateLibllama } from "./libllama";
import { parseProgressLine, QuantizeAbortError, QuantizeError, quantizeGguf } from "./quantize";

// Real llama.cpp quantizer (the prebuilt libllama node-llama-cpp ships) in a real child process, on real files.

let dir: string;
let tinyPath: string;
const read = (path: string): Promise<GgufHeader> => readGgufHeader(bytesSource(readFileSync(path)));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "corral-quantize-"));
  tinyPath = join(dir, "tiny-f16.gguf");
  writeFileSync(tinyPath, tinyModelBlob().bytes);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Pids of live processes whose command line mentions `marker` (the quantize child names its output there). */
function processesMentioning(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(marker)) pids.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return pids;
}

/** Polls `probe` until `done` says yes (a wait, not a measurement: a fixed bound only so a bug fails the test). */
async function waitFor<T>(probe: () => T, done: (value: T) => boolean, what: string, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Waits until the one quantize child mentioning `marker` has loaded libllama (so it is past its own setup, with
 * nothing left to do but llama_model_quantize) and returns its pid.
 */
async function childInsideLlama(marker: string, except?: number): Promise<number> {
  const loaded = () =>
    processesMentioning(marker).filter((pid) => {
      try {
        return pid !== except && readFileSync(`/proc/${pid}/maps`, "utf8").includes("libllama");
      } catch {
        return false;
      }
    });
  const [pid] = await waitFor(loaded, (pids) => pids.length === 1, "the quantize child to load libllama");
  return pid!;
}

/**
 * A FIFO as input: llama.cpp's fopen blocks until a writer opens it, so a child quantizing it never finishes by
 * itself. `release` opens and closes the write end, which unblocks a reader left behind (it then fails on its own).
 */
function stuckInput(folder: string): { input: string; release(): void } {
  const input = join(folder, "stuck.gguf");
  execFileSync("mkfifo", [input]);
  return {
    input,
    release() {
      try {
        closeSync(openSync(input, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // ENXIO: no reader left.
      }
    },
  };
}

/** Files in `folder` other than the inputs the test put there (so leftovers of a failed job show up). */
const leftovers = (folder: string, keep: string[]) => readdirSync(folder).filter((name) => !keep.includes(name));

const isMatrix = (dims: number[]) => dims.filter((d) => d > 1).length >= 2;

describe("parseProgressLine", () => {
  it("reads llama.cpp's per-tensor line and nothing else", () => {
    expect(
      parseProgressLine("[  12/ 201] blk.0.attn_q.weight - [ 64, 64, 1, 1], type = f16, converting to q8_0 .."),
    ).toEqual({ done: 12, total: 201 });
    expect(parseProgressLine("[   1/  21] output.weight - [...]")).toEqual({ done: 1, total: 21 });
    expect(parseProgressLine("llama_model_loader: - type  f16:   16 tensors")).toBeUndefined();
    expect(parseProgressLine("warning: [  1/ 2] not at the start")).toBeUndefined();
    expect(parseProgressLine("[   0/  21] x")).toBeUndefined();
    expect(parseProgressLine("[  22/  21] x")).toBeUndefined();
  });
});

describe("quantizeGguf", () => {
  let q8Path: string;
  let q4Path: string;

  it("rewrites F16 as Q8_0: every matrix Q8_0, norms F32, smaller, progress up to the tensor count", async () => {
    q8Path = join(dir, "tiny-q8_0.gguf");
    const progress: [number, number][] = [];
    await quantizeGguf({
      input: tinyPath,
      output: q8Path,
      fileType: "Q8_0",
      threads: 1,
      onProgress: (done, total) => progress.push([done, total]),
    });
    const before = await read(tinyPath);
    const after = await read(q8Path);
    expect(before.metadata["general.file_type"]).toBe(1);
    expect(after.metadata["general.file_type"]).toBe(7);
    expect(after.tensors.map((t) => t.name).sort()).toEqual(before.tensors.map((t) => t.name).sort());
    const matrices = after.tensors.filter((t) => isMatrix(t.dims));
    expect(matrices.length).toBe(16);
    for (const t of matrices) expect([t.name, t.type]).toEqual([t.name, GgmlType.Q8_0]);
    for (const t of after.tensors.filter((t) => !isMatrix(t.dims)))
      expect([t.name, t.type]).toEqual([t.name, GgmlType.F32]);
    expect(statSync(q8Path).size).toBeLessThan(statSync(tinyPath).size * 0.6);

    expect(progress.length).toBe(before.tensorCount);
    expect(progress.map(([done]) => done)).toEqual(Array.from({ length: before.tensorCount }, (_, i) => i + 1));
    expect(new Set(progress.map(([, total]) => total))).toEqual(new Set([before.tensorCount]));
    expect(leftovers(dir, ["tiny-f16.gguf", "tiny-q8_0.gguf"])).toEqual([]);
  });

  it("rewrites F16 as Q4_K_M (llama.cpp falls back to legacy quants where rows are shorter than 256)", async () => {
    q4Path = join(dir, "tiny-q4_k_m.gguf");
    await quantizeGguf({ input: tinyPath, output: q4Path, fileType: "Q4_K_M", threads: 1 });
    const after = await read(q4Path);
    expect(after.metadata["general.file_type"]).toBe(15);
    const types = new Set(after.tensors.filter((t) => isMatrix(t.dims)).map((t) => t.type));
    // The tiny model's rows are 64 or 128 wide: no K-quant fits, llama.cpp picks q5_0 (q8_0 where Q4_K_M wants q6_K).
    expect(types).toEqual(new Set([GgmlType.Q5_0, GgmlType.Q8_0]));
    expect(statSync(q4Path).size).toBeLessThan(statSync(q8Path).size);
  });

  it("is deterministic: the same input gives byte-identical output, whatever the thread count", async () => {
    const again = join(dir, "tiny-q4_k_m-again.gguf");
    await quantizeGguf({ input: tinyPath, output: again, fileType: "Q4_K_M", threads: 2 });
    expect(Buffer.compare(readFileSync(again), readFileSync(q4Path))).toBe(0);
    rmSync(again);
  });

  it("writes a model node-llama-cpp loads and runs", async () => {
    const llama = await testLlama();
    const model = await llama.loadModel({ modelPath: q8Path, gpuLayers: 0 });
    try {
      expect(model.fileInfo.metadata.general.file_type).toBe(7);
      const context = await model.createContext({ contextSize: 256, threads: 1, sequences: 1 });
      try {
        const tokens: Token[] = [];
        for await (const token of context
          .getSequence()
          .evaluate(model.tokenize("the quick brown"), { temperature: 0 })) {
          tokens.push(token);
          if (tokens.length >= 5) break;
        }
        expect(tokens.length).toBe(5);
        expect(typeof model.detokenize(tokens)).toBe("string");
      } finally {
        await context.dispose();
      }
    } finally {
      await model.dispose();
    }
  });

  it("kills the child on abort mid-way: rejects with AbortError, no output, no process left", async () => {
    const sub = mkdtempSync(join(dir, "abort-"));
    const input = join(sub, "medium-f16.gguf");
    writeFileSync(input, mediumModel());
    const output = join(sub, "medium-q4_k_m.gguf");
    let aliveAtAbort: number[] = [];
    const progress: number[] = [];
    const controller = new AbortController();
    const job = quantizeGguf({
      input,
      output,
      fileType: "Q4_K_M",
      threads: 1,
      signal: controller.signal,
      onProgress: (done) => {
        progress.push(done);
        if (done !== 1) return;
        aliveAtAbort = processesMentioning(sub);
        controller.abort();
      },
    });
    const err = await job.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(QuantizeAbortError);
    expect((err as Error).name).toBe("AbortError");
    // The first of 39 tensors is done and 38 (about a second of work on one thread) are not: the child was running.
    expect(aliveAtAbort.length).toBe(1);
    expect(progress).toEqual([1]);
    expect(processesMentioning(sub)).toEqual([]);
    expect(existsSync(`/proc/${aliveAtAbort[0]}`)).toBe(false);
    expect(leftovers(sub, [basename(input)])).toEqual([]);
  });

  it("kills a child blocked inside llama_model_quantize on abort", async () => {
    const sub = mkdtempSync(join(dir, "fifo-"));
    const { input, release } = stuckInput(sub);
    const controller = new AbortController();
    const job = quantizeGguf({
      input,
      output: join(sub, "out.gguf"),
      fileType: "Q8_0",
      threads: 1,
      signal: controller.signal,
    });
    try {
      const pid = await childInsideLlama(sub);
      controller.abort();
      // Without the kill this never settles: the child waits in fopen for a writer that never comes.
      await expect(job).rejects.toBeInstanceOf(QuantizeAbortError);
      expect(existsSync(`/proc/${pid}`)).toBe(false);
      expect(processesMentioning(sub)).toEqual([]);
      expect(leftovers(sub, ["stuck.gguf"])).toEqual([]);
    } finally {
      release();
    }
  });

  it("the child dies with its parent, even blocked inside llama.cpp", async () => {
    const sub = mkdtempSync(join(dir, "orphan-"));
    const { input, release } = stuckInput(sub);
    const script = join(sub, "parent.mts");
    const engine = pathToFileURL(join(import.meta.dirname, "quantize.ts")).href;
    writeFileSync(
      script,
      `import { quantizeGguf } from ${JSON.stringify(engine)};\n` +
        `await quantizeGguf({ input: process.argv[2], output: process.argv[3], fileType: "Q8_0", threads: 1 });\n`,
    );
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
    const parent = spawn(process.execPath, ["--import", tsx, script, input, join(sub, "out.gguf")], {
      stdio: "ignore",
    });
    try {
      const child = await childInsideLlama(sub, parent.pid);
      parent.kill("SIGKILL");
      await waitFor(
        () => existsSync(`/proc/${child}`),
        (alive) => !alive,
        "the orphaned child to exit",
      );
    } finally {
      parent.kill("SIGKILL");
      release();
    }
  });

  it("rejects at once on an already-aborted signal", async () => {
    const output = join(dir, "never.gguf");
    const controller = new AbortController();
    controller.abort(new Error("client went away"));
    const err = await quantizeGguf({
      input: tinyPath,
      output,
      fileType: "Q8_0",
      threads: 1,
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuantizeAbortError);
    expect((err as Error).cause).toEqual(new Error("client went away"));
    expect(existsSync(output)).toBe(false);
  });

  it("rejects a file that is not GGUF with llama.cpp's reason, and leaves nothing behind", async () => {
    const sub = mkdtempSync(join(dir, "bad-"));
    const input = join(sub, "not-a-model.bin");
    writeFileSync(input, Buffer.from("this is not a GGUF file, just some text that is long enough to read".repeat(20)));
    const output = join(sub, "out.gguf");
    const err = await quantizeGguf({ input, output, fileType: "Q8_0", threads: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuantizeError);
    expect((err as Error).message).toMatch(/^llama\.cpp could not quantize: /);
    expect((err as Error).message).toContain("invalid magic characters");
    expect((err as Error).message).toContain(
      "failed to quantize: llama_model_loader: failed to load model from <input>",
    );
    expect((err as Error).message).not.toContain(sub);
    expect((err as QuantizeError).log.join("\n")).toContain(input);
    expect(leftovers(sub, [basename(input)])).toEqual([]);
  });

  it("refuses unknown file types and unpinned thread counts before starting anything", async () => {
    const output = join(dir, "never.gguf");
    // biome-ignore lint/suspicious/noExplicitAny: a type the contract does not allow, as a client could send it.
    const q3 = "Q3_K_M" as any;
    await expect(quantizeGguf({ input: tinyPath, output, fileType: q3, threads: 1 })).rejects.toThrow(
      /unsupported quantization type "Q3_K_M"/,
    );
    // biome-ignore lint/suspicious/noExplicitAny: same, through the prototype.
    const proto = "toString" as any;
    await expect(quantizeGguf({ input: tinyPath, output, fileType: proto, threads: 1 })).rejects.toThrow(TypeError);
    await expect(quantizeGguf({ input: tinyPath, output, fileType: "Q8_0", threads: 0 })).rejects.toThrow(
      /threads must be a positive integer/,
    );
    expect(existsSync(output)).toBe(false);
  });
});

describe("locateLibllama", () => {
  it("finds node-llama-cpp's libllama, or the one LLAMA_LIB_PATH names", () => {
    const found = locateLibllama({});
    expect(basename(found)).toMatch(/^libllama[.\w]*\.so$/);
    expect(existsSync(found)).toBe(true);
    expect(locateLibllama({ [LLAMA_LIB_PATH_ENV]: found })).toBe(found);
    expect(() => locateLibllama({ [LLAMA_LIB_PATH_ENV]: join(dir, "missing.so") })).toThrow(/no such file/);
  });

  it("quantize fails cleanly when LLAMA_LIB_PATH is not a library", async () => {
    const notLib = join(dir, "libllama-fake.so");
    writeFileSync(notLib, "not an ELF file");
    vi.stubEnv(LLAMA_LIB_PATH_ENV, notLib);
    try {
      const output = join(dir, "never.gguf");
      const err = await quantizeGguf({ input: tinyPath, output, fileType: "Q8_0", threads: 1 }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(QuantizeError);
      expect((err as Error).message).toMatch(/^quantize: cannot load .*libllama-fake\.so: /);
      expect(existsSync(output)).toBe(false);
    } finally {
      vi.unstubAllEnvs();
      rmSync(notLib);
    }
  });
});

/**
 * A `llama` GGUF big enough that quantizing it takes about a second on one thread (512-wide, 4 layers, 26 MB of F16),
 * so an abort lands while the child is working. Weights are seeded random: the file is the same every run.
 */
function mediumModel(): Uint8Array {
  return writeRandomLlamaModel({
    name: "medium",
    description: "quantize abort test",
    hyperparameters: { embedding: 512, layers: 4, heads: 8, kvHeads: 4, feedForward: 1536, contextLength: 2048 },
  });
}
