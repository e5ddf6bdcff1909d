/**
 * The convert engine: convert.ts run in a child process per job (child.ts), so a conversion (seconds to minutes of
 * synchronous work) never blocks the runner's event loop, is killed outright on abort, and a crash takes only the
 * child. The output is written to a temporary name and renamed into place only on success; on any failure it is gone.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { ApiError } from "@corral/protocol/errors";
import type { AdapterBaseWire } from "@corral/protocol/runner";
import { childEntry } from "../child-entry";

export interface ConvertChildJob {
  /** [name as uploaded, path of the blob in the cache]. */
  files: [string, string][];
  output: string;
  parentPid: number;
  /** Present when the files are a LoRA adapter for this base. */
  adapterBase?: AdapterBaseWire;
}

export interface ConvertOptions {
  files: ReadonlyMap<string, string>;
  output: string;
  /** Present when the files are a LoRA adapter for this base (convert/adapter.ts). */
  adapterBase?: AdapterBaseWire;
  signal?: AbortSignal;
  onProgress?(done: number, total: number): void;
}

/** The conversion was aborted through its signal. */
export class ConvertAbortError extends Error {
  override readonly name = "AbortError";
  constructor(reason?: unknown) {
    super("convert aborted", { cause: reason });
  }
}

/** The written file's size, and the child's peak resident memory. */
export interface ConvertResult {
  size: number;
  maxRssBytes: number;
}

type ChildLine = { done: number; total: number } | ConvertResult | { error: string; status: number };

export function convertInChild(options: ConvertOptions): Promise<ConvertResult> {
  const { output, signal, onProgress } = options;
  if (signal?.aborted) return Promise.reject(new ConvertAbortError(signal.reason));
  let entry: ReturnType<typeof childEntry>;
  try {
    entry = childEntry(import.meta.url);
  } catch (err) {
    return Promise.reject(err);
  }
  const temp = join(dirname(output), `.${basename(output)}.${process.pid}-${randomBytes(6).toString("hex")}.partial`);
  const job: ConvertChildJob = { files: [...options.files], output: temp, parentPid: process.pid };
  if (options.adapterBase) job.adapterBase = options.adapterBase;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...entry.args, entry.entry, JSON.stringify(job)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let result: ConvertResult | undefined;
    let failure: unknown;
    let stderrTail = "";
    const fail = (err: unknown) => {
      failure ??= err;
      child.kill("SIGKILL");
    };
    const onAbort = () => fail(new ConvertAbortError(signal?.reason));
    signal?.addEventListener("abort", onAbort, { once: true });
    child.stderr.setEncoding("utf8").on("data", (text: string) => {
      stderrTail = (stderrTail + text).slice(-2000);
    });
    createInterface({ input: child.stdout }).on("line", (text) => {
      let parsed: ChildLine;
      try {
        parsed = JSON.parse(text) as ChildLine;
      } catch {
        return;
      }
      if ("error" in parsed) failure ??= new ApiError(parsed.status === 400 ? 400 : 500, parsed.error);
      else if ("size" in parsed) result = parsed;
      else if (failure === undefined) {
        try {
          onProgress?.(parsed.done, parsed.total);
        } catch (err) {
          fail(err);
        }
      }
    });
    let settled = false;
    const finish = async (code: number | null, spawnError?: Error) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      try {
        if (failure === undefined && spawnError === undefined && code === 0 && result) {
          await rename(temp, output);
          return resolve(result);
        }
      } catch (err) {
        failure ??= err;
      }
      await rm(temp, { force: true }).catch(() => {});
      if (failure !== undefined) return reject(failure);
      const why = spawnError ? `cannot start child: ${spawnError.message}` : `child exited with status ${code}`;
      reject(new Error(`convert ${why}${stderrTail ? `: ${stderrTail.trim().split("\n").at(-1)}` : ""}`));
    };
    child.on("error", (err) => {
      if (child.pid === undefined) void finish(null, err);
    });
    child.on("close", (code) => void finish(code));
  });
}
