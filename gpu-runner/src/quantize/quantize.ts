/**
 * The quantize engine: llama.cpp's own quantizer (llama_model_quantize, as `llama-quantize` and Ollama use it) run in
 * a child process per job. The child crashes alone, is killed on abort, and keeps koffi's libllama away from the
 * node-llama-cpp addon loaded in the runner. Progress is llama.cpp's own log: one `[   n/   N] name - ...` line per
 * tensor on the child's stderr, complete once that tensor is written.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { QUANTIZE_FILE_TYPES, type QuantizeFileType } from "@corral/protocol/runner";
import { childEntry } from "../child-entry";
import { CHILD_LOG_PREFIX, EXIT_QUANTIZE_FAILED, EXIT_SETUP_FAILED, type QuantizeChildJob } from "./child-job";
import { locateLibllama } from "./libllama";

export interface QuantizeOptions {
  /** Path of the source GGUF (a file in the runner's blob cache; never a client-given path). */
  input: string;
  /** Path to write; written completely or not at all (a temporary file beside it is renamed into place). */
  output: string;
  fileType: QuantizeFileType;
  /** llama.cpp threads; pinned, never llama.cpp's default (every hardware thread). */
  threads: number;
  /** Abort → the child is killed, nothing is written, the promise rejects with a {@link QuantizeAbortError}. */
  signal?: AbortSignal;
  /** Tensors rewritten so far / tensor count. */
  onProgress?(done: number, total: number): void;
}

/** The quantize was aborted through its signal (name "AbortError", code "ABORT_ERR"; the cause is signal.reason). */
export class QuantizeAbortError extends Error {
  override readonly name = "AbortError";
  readonly code = "ABORT_ERR";
  constructor(reason?: unknown) {
    super("quantize aborted", { cause: reason });
  }
}

/**
 * llama.cpp failed or the child died. The message ends with the tail of llama.cpp's log, the input and output paths
 * shown as `<input>` and `<output>`; `log` has the last lines as written.
 */
export class QuantizeError extends Error {
  override readonly name = "QuantizeError";
  constructor(
    message: string,
    /** The last lines the child wrote (llama.cpp's log). */
    readonly log: string[],
  ) {
    super(message);
  }
}

/** `[   12/  201] blk.0.attn_q.weight - ...`: tensor 12 of 201. */
export function parseProgressLine(line: string): { done: number; total: number } | undefined {
  const match = /^\[\s*(\d+)\/\s*(\d+)\]/.exec(line);
  if (!match) return undefined;
  const done = Number(match[1]);
  const total = Number(match[2]);
  return done >= 1 && done <= total ? { done, total } : undefined;
}

const LOG_TAIL_LINES = 40;
const ERROR_TAIL_LINES = 6;
const MAX_LINE_CHARS = 500;

/** Splits a byte stream into lines, keeping a partial last line until its newline arrives. */
class LineSplitter {
  private partial = "";
  constructor(private readonly onLine: (line: string) => void) {}
  push(text: string): void {
    const lines = (this.partial + text).split("\n");
    this.partial = lines.pop()!;
    for (const line of lines) this.onLine(line);
  }
  flush(): void {
    if (this.partial !== "") this.onLine(this.partial);
    this.partial = "";
  }
}

export function quantizeGguf(options: QuantizeOptions): Promise<void> {
  const { input, output, fileType, threads, signal, onProgress } = options;
  if (!Object.hasOwn(QUANTIZE_FILE_TYPES, fileType)) {
    return Promise.reject(new TypeError(`unsupported quantization type ${JSON.stringify(fileType)}`));
  }
  if (!Number.isInteger(threads) || threads < 1) {
    return Promise.reject(new TypeError(`threads must be a positive integer, got ${threads}`));
  }
  if (signal?.aborted) return Promise.reject(new QuantizeAbortError(signal.reason));

  let lib: string;
  let entry: ReturnType<typeof childEntry>;
  try {
    lib = locateLibllama();
    entry = childEntry(import.meta.url);
  } catch (err) {
    return Promise.reject(err);
  }

  // Beside the output (same file system, so the rename is atomic), named so no two jobs collide.
  const temp = join(dirname(output), `.${basename(output)}.${process.pid}-${randomBytes(6).toString("hex")}.partial`);
  const job: QuantizeChildJob = {
    lib,
    input,
    output: temp,
    ftype: QUANTIZE_FILE_TYPES[fileType],
    threads,
    parentPid: process.pid,
  };
  // Quantizing is CPU work: a CUDA build of libllama must not open a context on the GPU the runner's models use.
  const env: NodeJS.ProcessEnv = { ...process.env, CUDA_VISIBLE_DEVICES: "" };
  if (process.platform === "linux") {
    const libDir = dirname(lib);
    env.LD_LIBRARY_PATH = env.LD_LIBRARY_PATH ? `${libDir}:${env.LD_LIBRARY_PATH}` : libDir;
  }

  return new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [...entry.args, entry.entry, JSON.stringify(job)], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });

    const tail: string[] = [];
    let failure: unknown;
    let settled = false;
    const remember = (line: string) => {
      tail.push(line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line);
      if (tail.length > LOG_TAIL_LINES) tail.shift();
    };
    const fail = (err: unknown) => {
      failure ??= err;
      child.kill("SIGKILL");
    };
    const onAbort = () => fail(new QuantizeAbortError(signal?.reason));
    signal?.addEventListener("abort", onAbort, { once: true });

    const stderr = new LineSplitter((line) => {
      remember(line);
      const progress = parseProgressLine(line);
      if (!progress || !onProgress || failure !== undefined) return;
      try {
        onProgress(progress.done, progress.total);
      } catch (err) {
        fail(err);
      }
    });
    const stdout = new LineSplitter(remember);
    child.stderr.setEncoding("utf8").on("data", (text: string) => stderr.push(text));
    child.stdout.setEncoding("utf8").on("data", (text: string) => stdout.push(text));

    const finish = async (code: number | null, exitSignal: NodeJS.Signals | null, spawnError?: Error) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      stderr.flush();
      stdout.flush();
      try {
        if (failure === undefined && spawnError === undefined && code === 0) {
          await rename(temp, output);
          resolve();
          return;
        }
      } catch (err) {
        failure ??= err;
      }
      await rm(temp, { force: true }).catch(() => {});
      if (failure !== undefined) return reject(failure);
      const message = spawnError
        ? `quantize: cannot start child: ${spawnError.message}`
        : describeFailure(code, exitSignal, tail);
      // The message may reach a client: it names the files by role, not by their paths on this machine.
      const shown = message.split(temp).join("<output>").split(input).join("<input>");
      reject(new QuantizeError(shown, [...tail]));
    };
    child.on("error", (err) => {
      // Spawn failed: no 'close' follows when the process never started.
      if (child.pid === undefined) void finish(null, null, err);
    });
    child.on("close", (code, exitSignal) => void finish(code, exitSignal));
  });
}

function describeFailure(code: number | null, exitSignal: NodeJS.Signals | null, tail: string[]): string {
  // A tensor that was written says "size = ..."; one whose line ends in an error does not, and is kept.
  const lines = tail.filter((line) => line.trim() !== "" && !(parseProgressLine(line) && line.includes("size =")));
  if (code === EXIT_SETUP_FAILED) {
    const own = lines.filter((line) => line.startsWith(CHILD_LOG_PREFIX)).at(-1);
    return `quantize: ${own ? own.slice(CHILD_LOG_PREFIX.length).trim() : lines.slice(-ERROR_TAIL_LINES).join("\n")}`;
  }
  const log = lines.slice(-ERROR_TAIL_LINES).join("\n");
  if (code === EXIT_QUANTIZE_FAILED) return `llama.cpp could not quantize: ${log || "(no log)"}`;
  const how = exitSignal ? `killed by ${exitSignal}` : `exited with status ${code}`;
  return `quantize child ${how}${log ? `: ${log}` : ""}`;
}
