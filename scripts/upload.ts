/**
 * Uploads a local GGUF to corral, resumably.
 *   npm run upload -- --host URL --key KEY [--multipart-threshold 64MiB] [--part-size 64MiB]
 *                     [--state-dir DIR] [--create MODEL] [--stop-after-parts N] file.gguf
 * Small files go in one `POST /api/blobs/:digest`; bigger ones part by part (edge/UPLOADS.md). Run the same
 * command again after an interruption: it asks the server which parts it has and sends only the rest.
 * Defaults: --host $CORRAL_HOST or http://127.0.0.1:11434, --key $CORRAL_API_KEY.
 */
import { homedir } from "node:os";
import { consoleProgress, parseArgs, UploadInterrupted, uploadFile } from "./upload-lib";

try {
  const options = parseArgs(process.argv.slice(2), process.env, homedir());
  const result = await uploadFile(options, fetch, consoleProgress(process.stderr));
  const how = result.resumed ? `${result.method}, resumed` : result.method;
  const summary = {
    digest: result.digest,
    size: result.size,
    method: how,
    parts_sent: result.partsSent,
    parts_skipped: result.partsSkipped,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
} catch (err) {
  // Exit 2: stopped on purpose (--stop-after-parts), resumable; exit 1: failed.
  const interrupted = err instanceof UploadInterrupted;
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`${interrupted ? "upload interrupted" : "upload failed"}: ${message}\n`);
  process.exitCode = interrupted ? 2 : 1;
}
