/**
 * The quantize child: one process per job, started by quantize.ts with the job as JSON in argv[2]. It makes the one
 * blocking call to llama_model_quantize; llama.cpp logs to stderr (its default log callback), one line per tensor,
 * and the parent reads progress and errors from there. Exit status: 0, or one of child-job.ts's EXIT_* codes.
 */
import { CHILD_LOG_PREFIX, EXIT_SETUP_FAILED, type QuantizeChildJob } from "./child-job";
import { dieWithParent, loadQuantizer } from "./ffi";

let status: number;
try {
  const job = JSON.parse(process.argv[2] ?? "") as QuantizeChildJob;
  dieWithParent(job.parentPid);
  status = loadQuantizer(job.lib).quantize(job);
} catch (err) {
  process.stderr.write(`${CHILD_LOG_PREFIX} ${err instanceof Error ? err.message : String(err)}\n`);
  status = EXIT_SETUP_FAILED;
}
// No process.exit: stderr is a pipe, written asynchronously; the process ends once it is flushed.
process.exitCode = status;
