/**
 * The logic of `npm run upload` (scripts/upload.ts), kept free of process globals so it can be tested: hash a
 * local file, then upload it with the simple `POST /api/blobs/:digest` or, above a threshold, with the
 * resumable multipart API (edge/UPLOADS.md), remembering the upload id so an interrupted run resumes where the
 * server says it stopped.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { Readable } from "node:stream";

const MiB = 1024 * 1024;

export interface UploadOptions {
  host: string;
  key: string;
  file: string;
  /** Files at least this big use the multipart API. */
  multipartThreshold: number;
  partSize: number;
  /** Where upload ids are remembered between runs. */
  stateDir: string;
  /** Also create a model of this name from the file once uploaded. */
  createModel?: string;
  retries: number;
  /** Stop (as if interrupted) after sending this many parts in this run; for trying out resume. */
  stopAfterParts?: number;
}

export const DEFAULTS = { multipartThreshold: 64 * MiB, partSize: 64 * MiB, retries: 4 };

export type Fetch = (url: string, init?: RequestInit & { duplex?: "half" }) => Promise<Response>;

export interface Progress {
  phase(name: string, total: number): void;
  advance(bytes: number): void;
  /** A line worth telling the operator (what a resumed upload skips). */
  note(message: string): void;
  done(message: string): void;
}

/** Thrown when `stopAfterParts` ends a run early; the upload is left resumable. */
export class UploadInterrupted extends Error {
  constructor(readonly partsSent: number) {
    super(`stopped after ${partsSent} part(s) as asked; run the same command again to resume`);
    this.name = "UploadInterrupted";
  }
}

/**
 * Parses `--host URL --key KEY [--multipart-threshold N] [--part-size N] [--state-dir D] [--create NAME]
 * [--stop-after-parts N] file`.
 */
export function parseArgs(argv: string[], env: Record<string, string | undefined>, home: string): UploadOptions {
  const rest = [...argv];
  const take = (name: string): string | undefined => {
    const i = rest.indexOf(`--${name}`);
    if (i < 0) return undefined;
    const value = rest[i + 1];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    rest.splice(i, 2);
    return value;
  };
  const size = (name: string, fallback: number) => {
    const text = take(name);
    if (text === undefined) return fallback;
    const match = /^(\d+)([kmg]i?b?)?$/i.exec(text.trim());
    if (!match) throw new Error(`--${name}: not a size: ${text}`);
    const unit = (match[2] ?? "").toLowerCase()[0];
    return Number(match[1]) * (unit === "k" ? 1024 : unit === "m" ? MiB : unit === "g" ? 1024 * MiB : 1);
  };
  const host = (take("host") ?? env.CORRAL_HOST ?? "http://127.0.0.1:11434").replace(/\/+$/, "");
  const key = take("key") ?? env.CORRAL_API_KEY ?? "";
  const options: UploadOptions = {
    host,
    key,
    multipartThreshold: size("multipart-threshold", DEFAULTS.multipartThreshold),
    partSize: size("part-size", DEFAULTS.partSize),
    stateDir: take("state-dir") ?? join(home, ".corral", "uploads"),
    retries: DEFAULTS.retries,
    file: "",
  };
  const model = take("create");
  if (model) options.createModel = model;
  const stop = take("stop-after-parts");
  if (stop !== undefined) {
    if (!/^\d+$/.test(stop)) throw new Error(`--stop-after-parts: not a count: ${stop}`);
    options.stopAfterParts = Number(stop);
  }
  if (rest.length !== 1 || rest[0]!.startsWith("--")) throw new Error("usage: upload --host URL --key KEY file.gguf");
  options.file = rest[0]!;
  if (!key) throw new Error("an API key is needed: --key KEY or CORRAL_API_KEY");
  return options;
}

/** sha256 of a file, streamed (files are many GB). */
export async function hashFile(path: string, progress?: Progress): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) {
    hash.update(chunk as Buffer);
    progress?.advance((chunk as Buffer).length);
  }
  return `sha256:${hash.digest("hex")}`;
}

/** A file range as a request body, reporting bytes as they are read. */
function rangeBody(path: string, start: number, length: number, progress: Progress): ReadableStream<Uint8Array> {
  const stream = createReadStream(path, { start, end: start + length - 1, highWaterMark: MiB });
  stream.on("data", (chunk) => progress.advance((chunk as Buffer).length));
  return Readable.toWeb(stream) as ReadableStream<Uint8Array>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function check(res: Response, what: string): Promise<Response> {
  if (res.ok) return res;
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  throw new HttpError(res.status, `${what}: ${res.status} ${body.error ?? res.statusText}`);
}

/** Retries network failures and 5xx/429 answers with backoff; 4xx other than 429 are final. */
async function withRetries<T>(retries: number, fn: () => Promise<T>, sleep = defaultSleep): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const final = err instanceof HttpError && err.status < 500 && err.status !== 429;
      if (final || attempt >= retries) throw err;
      await sleep(500 * 2 ** attempt);
    }
  }
}

const defaultSleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface UploadStatus {
  upload_id: string;
  part_size: number;
  part_count: number;
  parts_done: number[];
  next_part: number | null;
}

interface SavedUpload {
  host: string;
  digest: string;
  size: number;
  upload_id: string;
}

const statePath = (o: UploadOptions, digest: string) => join(o.stateDir, `${digest.replace(":", "-")}.json`);

async function loadState(o: UploadOptions, digest: string, size: number): Promise<SavedUpload | null> {
  try {
    const saved = JSON.parse(await readFile(statePath(o, digest), "utf8")) as SavedUpload;
    return saved.host === o.host && saved.digest === digest && saved.size === size ? saved : null;
  } catch {
    return null;
  }
}

export interface UploadResult {
  digest: string;
  size: number;
  method: "exists" | "simple" | "multipart";
  resumed: boolean;
  partsSent: number;
  /** Parts the server already had when a resumed upload started. */
  partsSkipped: number;
}

export async function uploadFile(o: UploadOptions, fetchFn: Fetch, progress: Progress): Promise<UploadResult> {
  const { size } = await stat(o.file);
  progress.phase("hashing", size);
  const digest = await hashFile(o.file, progress);
  const auth = { authorization: `Bearer ${o.key}` };
  const blobUrl = `${o.host}/api/blobs/${digest}`;
  const result: UploadResult = { digest, size, method: "exists", resumed: false, partsSent: 0, partsSkipped: 0 };

  const head = await withRetries(o.retries, async () => {
    const res = await fetchFn(blobUrl, { method: "HEAD", headers: auth });
    if (res.status >= 500) throw new HttpError(res.status, `HEAD ${res.status}`);
    return res;
  });
  if (head.status === 401) throw new Error("unauthorized: check the API key");
  if (head.status !== 200) {
    if (size < o.multipartThreshold) {
      result.method = "simple";
      progress.phase("uploading", size);
      await withRetries(o.retries, async () =>
        check(
          await fetchFn(blobUrl, {
            method: "POST",
            headers: { ...auth, "content-length": String(size) },
            body: rangeBody(o.file, 0, size, progress),
            duplex: "half",
          }),
          "upload",
        ),
      );
    } else {
      result.method = "multipart";
      await multipart(o, fetchFn, progress, digest, size, auth, result);
    }
  }
  if (o.createModel) await createModel(o, fetchFn, digest, auth);
  progress.done(`${digest} ${result.method === "exists" ? "already uploaded" : "uploaded"}`);
  return result;
}

async function multipart(
  o: UploadOptions,
  fetchFn: Fetch,
  progress: Progress,
  digest: string,
  size: number,
  auth: Record<string, string>,
  result: UploadResult,
): Promise<void> {
  const base = `${o.host}/api/blobs/${digest}/uploads`;
  const json = async <T>(res: Response, what: string) => (await (await check(res, what)).json()) as T;
  let status: UploadStatus | null = null;
  const saved = await loadState(o, digest, size);
  if (saved) {
    // Resuming: the server, not our memory, says which parts it has.
    const res = await withRetries(o.retries, () => fetchFn(`${base}/${saved.upload_id}`, { headers: auth }));
    if (res.status === 200) {
      status = (await res.json()) as UploadStatus;
      result.resumed = true;
      result.partsSkipped = status.parts_done.length;
      progress.note(
        `resuming upload ${saved.upload_id}: the server has ${describeParts(status.parts_done)} of ${status.part_count}` +
          ` (${Math.min(size, status.parts_done.length * status.part_size)} bytes), skipping them`,
      );
    } else {
      progress.note(`upload ${saved.upload_id} is gone from the server (${res.status}); starting again`);
    }
  }
  if (!status) {
    status = await withRetries(o.retries, async () =>
      json<UploadStatus>(
        await fetchFn(base, {
          method: "POST",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify({ size, part_size: o.partSize }),
        }),
        "start upload",
      ),
    );
    await mkdir(o.stateDir, { recursive: true });
    const state: SavedUpload = { host: o.host, digest, size, upload_id: status.upload_id };
    await writeFile(statePath(o, digest), JSON.stringify(state));
  }

  const id = status.upload_id;
  progress.phase("uploading", size);
  progress.advance(Math.min(size, status.parts_done.length * status.part_size));
  let previous = 0;
  let repeats = 0;
  while (status.next_part !== null) {
    const n: number = status.next_part;
    repeats = n === previous ? repeats + 1 : 0;
    previous = n;
    if (repeats > o.retries) throw new Error(`part ${n} was not accepted after ${repeats} attempts`);
    if (o.stopAfterParts !== undefined && result.partsSent >= o.stopAfterParts) {
      throw new UploadInterrupted(result.partsSent);
    }
    const start = (n - 1) * status.part_size;
    const length = Math.min(status.part_size, size - start);
    status = await withRetries(o.retries, async () => {
      const res = await fetchFn(`${base}/${id}/parts/${n}`, {
        method: "PUT",
        headers: { ...auth, "content-length": String(length) },
        body: rangeBody(o.file, start, length, progress),
        duplex: "half",
      });
      // An earlier attempt whose answer was lost may have landed: ask the server where we are.
      if (res.status === 409) return json<UploadStatus>(await fetchFn(`${base}/${id}`, { headers: auth }), "status");
      const next = await json<UploadStatus>(res, `part ${n}`);
      result.partsSent++;
      return next;
    });
  }
  await withRetries(o.retries, async () =>
    check(await fetchFn(`${base}/${id}/complete`, { method: "POST", headers: auth }), "complete"),
  );
  await rm(statePath(o, digest), { force: true });
}

/** `parts 1-3, 5` (or `no parts`). */
export function describeParts(parts: readonly number[]): string {
  if (parts.length === 0) return "no parts";
  const ranges: string[] = [];
  const sorted = [...parts].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    ranges.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return `${parts.length === 1 ? "part" : "parts"} ${ranges.join(", ")}`;
}

async function createModel(o: UploadOptions, fetchFn: Fetch, digest: string, auth: Record<string, string>) {
  const res = await fetchFn(`${o.host}/api/create`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ model: o.createModel, files: { [basename(o.file)]: digest }, stream: false }),
  });
  await check(res, "create");
}

/** `[#####.....]  42% 1.2/2.9 GiB` for terminals. */
export function progressBar(done: number, total: number, width = 30): string {
  const ratio = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(ratio * width);
  const gib = (n: number) => (n / 1024 ** 3).toFixed(2);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}% ${gib(done)}/${gib(total)} GiB`;
}

/** Progress for uploads nobody watches (benchmarks, tests). */
export const silentProgress: Progress = { phase() {}, advance() {}, note() {}, done() {} };

/** A progress bar redrawn in place on a TTY, or a line per 10% otherwise (logs, CI). */
export function consoleProgress(out: { write(s: string): unknown; isTTY?: boolean }): Progress {
  let name = "";
  let total = 0;
  let done = 0;
  let lastTenth = -1;
  return {
    phase(next, size) {
      if (out.isTTY && name) out.write("\n");
      name = next;
      total = size;
      done = 0;
      lastTenth = -1;
    },
    advance(bytes) {
      done += bytes;
      if (out.isTTY) {
        out.write(`\r${name.padEnd(10)} ${progressBar(done, total)}`);
        return;
      }
      const tenth = total > 0 ? Math.floor((done / total) * 10) : 10;
      if (tenth !== lastTenth) {
        lastTenth = tenth;
        out.write(`${name} ${tenth * 10}% (${done}/${total} bytes)\n`);
      }
    },
    note(message) {
      out.write(`${out.isTTY && name ? "\n" : ""}${message}\n`);
    },
    done(message) {
      out.write(`${out.isTTY ? "\n" : ""}${message}\n`);
    },
  };
}
