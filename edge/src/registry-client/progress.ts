/**
 * Progress streams of pull, push and create, as Ollama writes them: one ProgressResponse per NDJSON line, an error
 * as a final `{"error": "..."}` line, and with `stream: false` only the last object (or the error with its status).
 */
import { ApiError, encodeNdjson, type ProgressResponse } from "@corral/protocol";
import { clientError, ndjsonErrorLine, ollamaError } from "../errors";

export type Progress = ProgressResponse;

/** `pulling 0123456789ab`: Ollama shows the first 12 hex digits of the blob's digest. */
export const shortDigest = (digest: string) => digest.slice("sha256:".length, "sha256:".length + 12);

export function blobProgress(verb: "pulling" | "pushing", digest: string, total: number, completed: number): Progress {
  return { status: `${verb} ${shortDigest(digest)}`, digest, total, completed };
}

/**
 * Every job's progress ends with `success`. One that stops short of it (returned early) still ends as a failure, so
 * a client never sees a stream that simply stops: it always gets `success` or an error.
 */
const finished = (last: Progress | undefined) => last?.status === "success";
const stoppedShort = () => new ApiError(500, "the operation stopped before it finished");

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
    return finished(last) ? Response.json(last) : ollamaError(clientError(stoppedShort()));
  }
  const first = await job.next();
  const encoder = new TextEncoder();
  let last: Progress | undefined;
  const send = (controller: ReadableStreamDefaultController<Uint8Array>, next: IteratorResult<Progress, void>) => {
    if (!next.done) {
      last = next.value;
      controller.enqueue(encoder.encode(encodeNdjson(next.value)));
      return;
    }
    if (!finished(last)) controller.enqueue(encoder.encode(encodeNdjson(ndjsonErrorLine(stoppedShort()))));
    controller.close();
  };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      send(controller, first);
    },
    async pull(controller) {
      try {
        send(controller, await job.next());
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
