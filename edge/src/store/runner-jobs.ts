/**
 * Running a job (quantize, convert) on a runner for `/api/create`: the runner writes its result into the blob store
 * and reports its digest, streaming JobEvent lines meanwhile, which become the create's progress lines. A runner that
 * refuses (busy with another job, draining, not able to store results) or cannot be reached before its first line
 * is replaced by another, and while every runner is busy the job waits a little; a failure after the first line ends
 * the create (the job's partial output never becomes a model).
 */
import { ApiError } from "@corral/protocol";
import { parseDigest } from "@corral/protocol/digest";
import { readNdjson } from "@corral/protocol/ndjson";
import { type JobEvent, JobEventSchema } from "@corral/protocol/runner";
import type { ProgressResponse } from "@corral/protocol/types";
import type { Env } from "../env";
import { ollamaErrorOf } from "../errors";
import { intVar } from "../registry-client/config";
import { fetchRunner } from "../relay/transport";
import { schedulerStub } from "../scheduler/client";

/** Passes over the fleet while every runner is busy with another job, and the pause before each retry. */
const BUSY_RETRY_DELAYS_MS = [0, 1_000, 3_000, 8_000];
/** A status line at least this often while the runner works silently (download, hashing, upload). */
const KEEPALIVE_MS = 2_000;
/**
 * A runner answers a job at once and then sends a line at least every 2 s (it repeats its last one while it works:
 * gpu-runner job-stream.ts). Waiting this long on it for a line (RUNNER_JOB_SILENCE_MS overrides it; tests shrink
 * it), the edge takes it for gone: a host that vanished, or a connection black-holed on the way, drops nothing, and
 * the create would otherwise never end.
 */
const RUNNER_SILENCE_MS = 60_000;

export interface RunnerJob {
  kind: "quantize" | "convert";
  body: { request_id: string };
  /** The create's progress line for a runner's progress event. */
  line(event: Extract<JobEvent, { event: "progress" }>): ProgressResponse;
}

export async function* runRunnerJob(
  env: Env,
  job: RunnerJob,
  signal: AbortSignal,
): AsyncGenerator<ProgressResponse, { digest: string; size: number }> {
  let lastFailure = "no runner is available";
  const silenceMs = intVar(env.RUNNER_JOB_SILENCE_MS, RUNNER_SILENCE_MS, 100, 600_000);
  for (const delay of BUSY_RETRY_DELAYS_MS) {
    if (delay > 0) await abortableDelay(delay, signal, job.kind);
    const tried: string[] = [];
    // Only a runner busy with another job is worth waiting for; none at all, or none able, is an answer now.
    let sawBusy = false;
    for (;;) {
      const runner = await schedulerStub(env).jobRunner(tried);
      if (!runner) break;
      tried.push(runner.id);
      const silence = silenceWatch(silenceMs);
      try {
        let response: Response;
        try {
          response = await fetchRunner(env, runner.url, `/v1/${job.kind}`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(job.body),
            signal: AbortSignal.any([signal, silence.signal]),
          });
        } catch (err) {
          if (signal.aborted) throw new ApiError(499, `${job.kind} cancelled`);
          lastFailure = silence.signal.aborted
            ? `runner ${runner.id} did not answer within ${silenceMs / 1000} s`
            : `runner ${runner.id} unreachable: ${err instanceof Error ? err.message : String(err)}`;
          continue;
        }
        if (response.ok && response.body) {
          return yield* relayJob(runnerEvents(response.body, runner.id, job, signal, silence), job);
        }
        const failure = await runnerError(response);
        // Only a judgement on the job itself goes to the client; anything else is this runner's problem.
        if (response.status === 400) throw failure;
        sawBusy ||= response.status === 503 || response.status === 429;
        lastFailure = `runner ${runner.id}: ${failure.message}`;
      } finally {
        silence.dispose();
      }
    }
    if (!sawBusy) break;
  }
  throw new ApiError(503, `cannot ${job.kind} right now (${lastFailure}), please try again`);
}

function abortableDelay(ms: number, signal: AbortSignal, kind: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new ApiError(499, `${kind} cancelled`));
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new ApiError(499, `${kind} cancelled`));
      },
      { once: true },
    );
  });
}

/**
 * The runner's answer, line by line. A connection that drops mid-answer (the runner died, its host or the tunnel
 * went away) surfaces from the body as a bare network error, and a runner gone silent as the watch's abort: each
 * becomes an ApiError naming the runner, so the create ends with an error line that says what happened.
 */
async function* runnerEvents(
  body: ReadableStream<Uint8Array>,
  runnerId: string,
  job: RunnerJob,
  signal: AbortSignal,
  silence: SilenceWatch,
): AsyncGenerator<unknown, void, undefined> {
  const lines = readNdjson(body);
  try {
    for (;;) {
      // Only time spent waiting on the runner counts: a client slow to read its progress is not a silent runner.
      silence.arm();
      const next = await lines.next();
      silence.disarm();
      if (next.done) return;
      yield next.value;
    }
  } catch (err) {
    if (err instanceof ApiError) throw err;
    if (signal.aborted) throw new ApiError(499, `${job.kind} cancelled`);
    if (silence.signal.aborted) {
      throw new ApiError(504, `runner ${runnerId} sent nothing for ${silence.ms / 1000} s during the ${job.kind} job`);
    }
    const reason = err instanceof Error ? err.message : String(err);
    throw new ApiError(502, `lost the connection to runner ${runnerId} during the ${job.kind} job (${reason})`);
  } finally {
    await lines.return();
  }
}

interface SilenceWatch {
  readonly ms: number;
  /** Aborts once the watch has been armed for its whole span without a disarm. */
  readonly signal: AbortSignal;
  arm(): void;
  disarm(): void;
  /** Stops it for good (idempotent). */
  dispose(): void;
}

/** Armed from the start: the runner must answer the request itself within `ms` too. */
function silenceWatch(ms: number): SilenceWatch {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const disarm = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  const arm = () => {
    disarm();
    if (!controller.signal.aborted) timer = setTimeout(() => controller.abort(), ms);
  };
  arm();
  return { ms, signal: controller.signal, arm, disarm, dispose: disarm };
}

async function* relayJob(
  lines: AsyncGenerator<unknown, void, undefined>,
  job: RunnerJob,
): AsyncGenerator<ProgressResponse, { digest: string; size: number }> {
  let last: ProgressResponse | undefined;
  let lastAt = 0;
  for await (const line of lines) {
    const parsed = JobEventSchema.safeParse(line);
    if (!parsed.success) throw new ApiError(502, `runner sent an invalid ${job.kind} event`);
    const event = parsed.data;
    if (event.event === "error") throw new ApiError(event.status ?? 500, event.error);
    if (event.event === "done") {
      const digest = parseDigest(event.digest);
      if (!digest) throw new ApiError(502, "runner reported an invalid digest");
      return { digest, size: event.size };
    }
    // While the runner downloads the sources (before), or hashes and stores the result (after), the last line is
    // repeated now and then: the client sees the job is alive, and the create's pins get extended.
    const next = job.line(event);
    const now = Date.now();
    if (!last || last.status !== next.status || last.completed !== next.completed || now - lastAt >= KEEPALIVE_MS) {
      last = next;
      lastAt = now;
      yield next;
    }
  }
  throw new ApiError(502, `the runner ended the ${job.kind} job without a result`);
}

async function runnerError(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  const message = ollamaErrorOf(text) ?? `runner answered ${response.status}`;
  return new ApiError(response.status >= 400 && response.status < 600 ? response.status : 502, message);
}
