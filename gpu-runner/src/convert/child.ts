/**
 * The convert child: one process per job, started by engine.ts with the job as JSON in argv[2]. Converting is
 * synchronous CPU and disk work; here it blocks nothing but this process. stdout carries one JSON line per event:
 * `{"done","total"}` progress, then `{"size"}` or `{"error","status"}`.
 */
import { adapterBaseFromWire } from "@corral/protocol/checkpoint-lora";
import { isApiError } from "@corral/protocol/errors";
import { dieWithParent } from "../quantize/ffi";
import { convertAdapter } from "./adapter";
import { convertCheckpoint } from "./convert";
import type { ConvertChildJob } from "./engine";

const line = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
try {
  const job = JSON.parse(process.argv[2] ?? "") as ConvertChildJob;
  dieWithParent(job.parentPid);
  const files = new Map(job.files);
  const onProgress = (done: number, total: number) => line({ done, total });
  const result = job.adapterBase
    ? convertAdapter({ files, base: adapterBaseFromWire(job.adapterBase), output: job.output, onProgress })
    : convertCheckpoint({ files, output: job.output, onProgress });
  // Peak memory of the conversion, for the benchmark (maxRSS is in KiB).
  line({ ...result, maxRssBytes: process.resourceUsage().maxRSS * 1024 });
} catch (err) {
  // Only judgements on the input (ApiError 400) carry their text out; anything else is this runner's failure.
  const status = isApiError(err) ? err.status : 500;
  line({ error: err instanceof Error ? err.message : String(err), status });
}
