/**
 * Progress streams of pull, push and create, as Ollama writes them: one ProgressResponse per NDJSON line, an error
 * as a final `{"error": "..."}` line, and with `stream: false` only the last object (or the error with its status).
 */
import { encodeNdjson, type ProgressResponse } from "@corral/protocol";
import { clientError, ndjsonErrorLine, ollamaError } from "../errors";

export type Progress = ProgressResponse;

/** `pulling 0123456789ab`: Ollama shows the first 12 hex digits of the blob's digest. */
export const shortDigest = (digest: string) => digest.slice("sha256:".length, "sha256:".length + 12);

export function blobProgress(verb: "pulling" | "pushing", digest: string, total: number, completed: number): Progress {
  return { status: `${verb} ${shortDigest(digest)}`, digest, total, completed };
}

/**
 * Turns a job's progress into the response. The first object is awaited before answering, so a job that fails
 * at once (bad name, refused registry) answers with a plain error status as Ollama does when nothing was written.
 */
export async function progressResponse(
  job: AsyncGenerator<Progress, void, undefined>,
  stream: boolean,
  onCancel: () => void = () => {},
): Promise<Response> {
  if (!stream) {
    let last: Progress | undefined;
    try {
      for await (const p of job) last = p;
    } catch (err) {
      return ollamaError(clientError(err));
    }
    return Response.json(last ?? { status: "success" });
  }
  const first = await job.next();
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      if (!first.done) controller.enqueue(encoder.encode(encodeNdjson(first.value)));
      else controller.close();
    },
    async pull(controller) {
      try {
        const next = await job.next();
        if (next.done) controller.close();
        else controller.enqueue(encoder.encode(encodeNdjson(next.value)));
      } catch (err) {
        controller.enqueue(encoder.encode(encodeNdjson(ndjsonErrorLine(err))));
        controller.close();
      }
    },
    async cancel() {
      // Abort first: the job may be waiting on the network, and return() only takes effect at its next yield.
      onCancel();
      await job.return(undefined);
    },
  });
  return new Response(body, { headers: { "content-type": "application/x-ndjson" } });
}

/** Lets through at most one progress object per interval (and always the last one, where completed == total). */
export class ProgressThrottle {
  private last = 0;
  constructor(private readonly intervalMs = 100) {}

  due(final: boolean, now = Date.now()): boolean {
    if (!final && now - this.last < this.intervalMs) return false;
    this.last = now;
    return true;
  }
}
