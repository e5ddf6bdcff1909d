/**
 * Shared blob downloads. A `BlobFetcher` Durable Object exists per (tenant, blob digest); every pull of that blob
 * asks it, so concurrent pulls share one download and each streams its progress, and their verify steps share
 * one completion. When the last watching pull goes away the download stops (as Ollama's does); what was stored
 * stays in the resumable upload for the next pull.
 *
 * The Worker talks to it with `fetch`: `POST /download` answers NDJSON (`{"completed":n}` lines, a heartbeat at
 * least every second so that a pull that went away is noticed at the next write, then `{"done":true,
 * "upload_id":…}` or `{"error":…,"status":…}`); `POST /commit` answers `{"ok":true}` or an error. Without the
 * binding (a deployment that has not added it yet), each pull downloads and commits on its own, with the same
 * resumability but no sharing.
 */

import { DurableObject } from "cloudflare:workers";
import { ApiError, errorText, readNdjson } from "@corral/protocol";
import { type BlobJob, type CommitJob, commitUpload, downloadBlob } from "./blob-download";
import type { OciEnv } from "./config";
import { Latest } from "./watch";

type DownloadLine =
  | { completed: number }
  | { done: true; upload_id: string | null }
  | { error: string; status: number };

/**
 * A failure inside the object, carried to the pull that rethrows it as an ApiError: a registry's or the network's
 * words are worth showing in the pull's error line (as Ollama shows them), so the text of any error crosses.
 */
const transportedError = (err: unknown) => ({
  error: errorText(err),
  status: err instanceof ApiError ? err.status : 500,
});

const PROGRESS_INTERVAL_MS = 100;
const HEARTBEAT_MS = 1000;
const HEARTBEAT = Symbol("heartbeat");

/** One running download and the number of pulls watching it. */
class SharedDownload {
  readonly progress = new Latest(0);
  readonly abort = new AbortController();
  readonly result: Promise<string | null>;
  watchers = 0;

  constructor(env: OciEnv, job: BlobJob, onSettled: () => void, fetcher?: typeof fetch) {
    this.result = downloadBlob(env, job, (n) => this.progress.set(n), this.abort.signal, fetcher);
    this.result.then(
      () => this.progress.end(),
      (err) => this.progress.fail(err),
    );
    this.result.catch(() => {}).finally(onSettled);
  }

  /** A watcher's NDJSON stream; cancelling it (the pull went away) stops the download if nobody else watches. */
  watch(): ReadableStream<Uint8Array> {
    this.watchers++;
    const encoder = new TextEncoder();
    const line = (value: DownloadLine) => encoder.encode(`${JSON.stringify(value)}\n`);
    const changes = this.progress.changes(PROGRESS_INTERVAL_MS);
    let pending: Promise<IteratorResult<number, void>> | null = null;
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      if (--this.watchers === 0) this.abort.abort(new ApiError(499, "pull canceled"));
    };
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          pending ??= changes.next();
          let timer: ReturnType<typeof setTimeout> | undefined;
          const beat = new Promise<typeof HEARTBEAT>((resolve) => {
            timer = setTimeout(() => resolve(HEARTBEAT), HEARTBEAT_MS);
          });
          const next = await Promise.race([pending, beat]);
          if (timer !== undefined) clearTimeout(timer);
          if (next === HEARTBEAT) return controller.enqueue(line({ completed: this.progress.value }));
          pending = null;
          if (!next.done) return controller.enqueue(line({ completed: next.value }));
          controller.enqueue(line({ done: true, upload_id: await this.result }));
        } catch (err) {
          controller.enqueue(line(transportedError(err)));
        }
        controller.close();
        leave();
      },
      cancel: async () => {
        leave();
        await changes.return(undefined);
      },
    });
  }
}

export class BlobFetcher extends DurableObject<OciEnv> {
  private current: SharedDownload | null = null;
  /** Completions by upload id: pulls that shared a download share its verify step and its verdict. */
  private commits = new Map<string, Promise<void>>();

  override async fetch(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (path === "/commit") return this.commit((await request.json()) as CommitJob);
    const job = (await request.json()) as BlobJob;
    if (!this.current) {
      const started: SharedDownload = new SharedDownload(this.env, job, () => {
        if (this.current === started) this.current = null;
      });
      this.current = started;
    }
    return new Response(this.current.watch(), { headers: { "content-type": "application/x-ndjson" } });
  }

  private async commit(job: CommitJob): Promise<Response> {
    const key = job.uploadId ?? "empty";
    let pending = this.commits.get(key);
    if (!pending) {
      pending = commitUpload(this.env, job);
      this.commits.set(key, pending);
      // Late joiners within a minute get the same verdict; after that a retry finds the blob (or the upload) itself.
      pending.catch(() => {}).finally(() => setTimeout(() => this.commits.delete(key), 60_000));
    }
    try {
      await pending;
      return Response.json({ ok: true });
    } catch (err) {
      return Response.json(transportedError(err));
    }
  }
}

const stubFor = (env: OciEnv, tenantId: string, digest: string) => {
  const namespace = env.BLOB_FETCHER!;
  return namespace.get(namespace.idFromName(`${tenantId}/${digest}`));
};

/**
 * Downloads a blob (through its BlobFetcher when bound), yielding cumulative bytes; returns the upload id to
 * commit, or null for an empty blob. `fetcher` (tests) keeps the work in this request.
 */
export async function* fetchBlob(
  env: OciEnv,
  job: BlobJob,
  signal: AbortSignal,
  fetcher?: typeof fetch,
): AsyncGenerator<number, string | null, undefined> {
  if (!env.BLOB_FETCHER || fetcher) {
    const local = new SharedDownload(env, job, () => {}, fetcher);
    const stop = () => local.abort.abort(signal.reason);
    signal.addEventListener("abort", stop, { once: true });
    try {
      for await (const n of local.progress.changes(PROGRESS_INTERVAL_MS, signal)) yield n;
      return await local.result;
    } finally {
      signal.removeEventListener("abort", stop);
      local.abort.abort(new ApiError(499, "pull canceled"));
    }
  }
  const res = await stubFor(env, job.tenantId, job.digest).fetch("https://blob-fetcher/download", {
    method: "POST",
    body: JSON.stringify(job),
    headers: { "content-type": "application/json" },
  });
  if (!res.body) throw new ApiError(500, "blob fetcher sent no body");
  // Cancelling our end of the stream is how the fetcher learns that this pull went away.
  const [watched, release] = cancellable(res.body, signal);
  try {
    for await (const value of readNdjson(watched)) {
      const event = value as DownloadLine;
      if ("error" in event) throw new ApiError(event.status, event.error);
      if ("done" in event) return event.upload_id;
      yield event.completed;
    }
  } finally {
    release();
  }
  signal.throwIfAborted();
  throw new ApiError(502, "blob fetcher ended without a result");
}

/** The verify step of one blob, through its BlobFetcher when bound (so sharing pulls complete it once). */
export async function commitBlob(env: OciEnv, job: CommitJob, local = false): Promise<void> {
  if (!env.BLOB_FETCHER || local) return commitUpload(env, job);
  const res = await stubFor(env, job.tenantId, job.digest).fetch("https://blob-fetcher/commit", {
    method: "POST",
    body: JSON.stringify(job),
    headers: { "content-type": "application/json" },
  });
  const verdict = (await res.json()) as { ok?: true; error?: string; status?: number };
  if (verdict.error !== undefined) throw new ApiError(verdict.status ?? 500, verdict.error);
}

/** A stream that ends early (and cancels its source) when `signal` fires. */
function cancellable(
  source: ReadableStream<Uint8Array>,
  signal: AbortSignal,
): [ReadableStream<Uint8Array>, () => void] {
  const reader = source.getReader();
  const stop = () => {
    reader.cancel().catch(() => {});
  };
  signal.addEventListener("abort", stop, { once: true });
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: stop,
  });
  const release = () => {
    signal.removeEventListener("abort", stop);
    stop();
  };
  return [stream, release];
}
