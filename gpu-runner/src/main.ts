/**
 * gpu-runner entry point: reads the environment (config.ts), opens the blob cache and llama.cpp, serves the
 * runner API and heartbeats to the edge. SIGTERM/SIGINT drain: stop accepting, let streams finish, dispose
 * every model, exit.
 */
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { BlobCache } from "./blob-cache";
import { type BlobSource, EdgeBlobSource, S3BlobSource } from "./blob-source";
import { systemClock } from "./clock";
import { loadConfig, type RunnerConfig } from "./config";
import { Heartbeat } from "./heartbeat";
import { RunnerMetrics } from "./metrics";
import { ModelPool } from "./model-pool";
import { createRunnerServer } from "./server";

function blobSourceFor(config: RunnerConfig): BlobSource {
  if (config.blobSource.kind === "s3") return new S3BlobSource(config.blobSource);
  return new EdgeBlobSource(config.edgeUrl!, config.secret);
}

async function main(): Promise<void> {
  const config = loadConfig();
  const log = (message: string) => console.error(`[runner ${config.runnerId}] ${message}`);

  const blobs = new BlobCache({ dir: config.cacheDir, maxBytes: config.cacheMaxBytes, source: blobSourceFor(config) });
  await blobs.init();
  // build "never": a runner must not compile llama.cpp at start; the image ships the binary it needs.
  const llama = await getLlama({
    gpu: config.gpu,
    build: "never",
    maxThreads: config.threads,
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => {
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) log(`llama.cpp: ${message.trimEnd()}`);
    },
  });

  let heartbeat: Heartbeat | undefined;
  const metrics = new RunnerMetrics();
  const pool = new ModelPool({
    llama,
    blobs,
    clock: systemClock,
    threads: config.threads,
    parallel: config.parallel,
    memoryBudgetBytes: config.memoryBudgetBytes,
    defaultNumCtx: config.defaultNumCtx,
    defaultKeepAliveMs: config.defaultKeepAliveMs,
    maxWaiting: config.maxWaiting,
    onChange: () => heartbeat?.trigger(),
  });
  const runner = createRunnerServer({
    secret: config.secret,
    pool,
    blobs,
    llama,
    clock: systemClock,
    metrics,
    identity: {
      id: config.runnerId,
      url: config.runnerUrl,
      parallel: config.parallel,
      memoryBudgetBytes: config.memoryBudgetBytes,
    },
    log,
  });
  const address = await runner.listen(config.port, config.host);

  if (config.edgeUrl) {
    heartbeat = new Heartbeat({
      edgeUrl: config.edgeUrl,
      secret: config.secret,
      intervalMs: config.heartbeatIntervalMs,
      status: runner.status,
      onDraining: (draining) => runner.setDraining(draining),
      log,
    });
    heartbeat.start();
  }

  const gpu = llama.gpu === false ? "cpu" : llama.gpu;
  console.log(
    `gpu-runner ${config.runnerId} listening on http://${address.address}:${address.port} ` +
      `(${gpu}, threads ${config.threads}, parallel ${config.parallel}, edge ${config.edgeUrl ?? "none"})`,
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: draining ${runner.activeRequests} request(s)`);
    runner.setDraining(true);
    await heartbeat?.beatOnce();
    await heartbeat?.stop();
    await runner.close();
    await pool.dispose();
    await llama.dispose();
    log("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((err) => {
  console.error(`gpu-runner failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
