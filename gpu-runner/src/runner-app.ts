/**
 * Wires a runner together from its config: blob cache, llama.cpp, model pool, HTTP server and heartbeat.
 * main.ts runs it as a process; the local stack or tests may start it in-process.
 */
import type { AddressInfo } from "node:net";
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import { BlobCache } from "./blob-cache";
import { type BlobSink, EdgeBlobSink, edgeBlobIntent, S3BlobSink } from "./blob-sink";
import { type BlobSource, EdgeBlobSource, S3BlobSource } from "./blob-source";
import { systemClock } from "./clock";
import { defaultMemoryBudget, type RunnerConfig } from "./config";
import { Heartbeat } from "./heartbeat";
import { RunnerMetrics } from "./metrics";
import { ModelPool } from "./model-pool";
import { createRunnerServer, type RunnerServer } from "./server";
import { OffThreadTokenizer } from "./tokenizer";

export interface RunningRunner {
  readonly address: AddressInfo;
  readonly server: RunnerServer;
  readonly pool: ModelPool;
  readonly llama: Llama;
  /** Drains: reports draining to the edge, lets running requests finish, unloads every model. Idempotent. */
  stop(): Promise<void>;
}

function blobSourceFor(config: RunnerConfig): BlobSource {
  if (config.blobSource.kind === "s3") return new S3BlobSource(config.blobSource);
  return new EdgeBlobSource(config.edgeUrl!, config.secret);
}

/** Where produced blobs (quantize results) go: the same store the blobs come from. */
function blobSinkFor(config: RunnerConfig): BlobSink {
  if (config.blobSource.kind === "s3") {
    const announce = config.edgeUrl ? edgeBlobIntent(config.edgeUrl, config.secret) : undefined;
    return new S3BlobSink({ ...config.blobSource, announce });
  }
  return new EdgeBlobSink(config.edgeUrl!, config.secret);
}

export async function startRunner(
  config: RunnerConfig,
  log: (message: string) => void = (message) => console.error(message),
): Promise<RunningRunner> {
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

  const memoryBudgetBytes =
    config.memoryBudgetBytes ??
    defaultMemoryBudget(llama.gpu === false ? undefined : (await llama.getVramState()).total);

  let heartbeat: Heartbeat | undefined;
  const metrics = new RunnerMetrics();
  const tokenizer = new OffThreadTokenizer();
  const pool = new ModelPool({
    llama,
    blobs,
    clock: systemClock,
    threads: config.threads,
    parallel: config.parallel,
    flashAttention: config.flashAttention,
    llamaServer: config.llamaServer,
    memoryBudgetBytes,
    defaultNumCtx: config.defaultNumCtx,
    defaultKeepAliveMs: config.defaultKeepAliveMs,
    maxWaiting: config.maxWaiting,
    tokenizer,
    onChange: () => heartbeat?.trigger(),
    onLoad: () => metrics.loads.inc({}),
    onUnload: (reason) => metrics.unloads.inc({ reason }),
  });
  const server = createRunnerServer({
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
      memoryBudgetBytes,
    },
    log,
    announceModels: () => heartbeat?.pulse() ?? Promise.resolve(),
    sink: blobSinkFor(config),
    threads: config.threads,
  });
  const address = await server.listen(config.port, config.host);

  if (config.edgeUrl) {
    heartbeat = new Heartbeat({
      edgeUrl: config.edgeUrl,
      secret: config.secret,
      intervalMs: config.heartbeatIntervalMs,
      status: server.status,
      onDraining: (draining) => server.setEdgeDraining(draining),
      log,
      keeper: true,
    });
    heartbeat.start();
  }

  let stopping: Promise<void> | undefined;
  return {
    address,
    server,
    pool,
    llama,
    stop() {
      stopping ??= (async () => {
        server.setDraining(true);
        await heartbeat?.stop();
        await heartbeat?.beatOnce();
        await server.close();
        await pool.dispose();
        await tokenizer.dispose();
        await llama.dispose();
      })();
      return stopping;
    },
  };
}
